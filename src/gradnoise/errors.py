"""The two kinds of bad input, each with a message that names what is wrong and where."""


class ConfigError(ValueError):
    """The config is invalid; the message names the key and, where there is a closed set, the
    allowed values."""


class InputError(RuntimeError):
    """An input file is missing, truncated or not what the stage expects; the message names it."""
