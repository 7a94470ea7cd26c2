"""Pre-training strategies (one module each, registered by name) and the one trainer."""

from molleak.pretrain.base import STRATEGIES, PretrainStrategy, load_strategies

__all__ = ["STRATEGIES", "PretrainStrategy", "load_strategies"]
