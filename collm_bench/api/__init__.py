"""The plugin contract: the hook specifications, the component specs and their options,
the method context, and the registry that discovers plugins (built-in ones through the same
entry points as yours) and isolates broken ones.

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "LoggerSpec": "collm_bench.api.loggers",
    "BackboneSpec": "collm_bench.api.components",
    "Companion": "collm_bench.api.components",
    "DatasetSpec": "collm_bench.api.components",
    "ENCODER_TRAINING_BOUNDS": "collm_bench.api.components",
    "EncoderSpec": "collm_bench.api.components",
    "KINDS": "collm_bench.api.components",
    "MethodContext": "collm_bench.api.methods",
    "MethodOutput": "collm_bench.api.methods",
    "MethodSpec": "collm_bench.api.components",
    "MetricSpec": "collm_bench.api.components",
    "OPTION_META": "collm_bench.api.components",
    "PROJECT": "collm_bench.api.registry",
    "PluginFailure": "collm_bench.api.registry",
    "REGISTRATION_HOOKS": "collm_bench.api.registry",
    "Registered": "collm_bench.api.registry",
    "Registry": "collm_bench.api.registry",
    "SAMPLE_SEED": "collm_bench.api.methods",
    "describe": "collm_bench.api.registry",
    "describe_options": "collm_bench.api.components",
    "disable_plugin": "collm_bench.api.registry",
    "evaluation_rows": "collm_bench.api.methods",
    "sampled_rows": "collm_bench.api.methods",
    "get_registry": "collm_bench.api.registry",
    "hookimpl": "collm_bench.api.registry",
    "hookspec": "collm_bench.api.hookspecs",
    "json_ready": "collm_bench.api.components",
    "load_registry": "collm_bench.api.registry",
    "option": "collm_bench.api.components",
    "options_dict": "collm_bench.api.components",
    "parse_options": "collm_bench.api.components",
    "register_backbones": "collm_bench.api.hookspecs",
    "register_commands": "collm_bench.api.hookspecs",
    "register_datasets": "collm_bench.api.hookspecs",
    "register_encoders": "collm_bench.api.hookspecs",
    "register_methods": "collm_bench.api.hookspecs",
    "register_loggers": "collm_bench.api.hookspecs",
    "register_metrics": "collm_bench.api.hookspecs",
    "set_registry": "collm_bench.api.registry",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
