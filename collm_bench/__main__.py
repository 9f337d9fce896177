from collm_bench.cli import main

main()
