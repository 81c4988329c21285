"""torch.ao.nn.quantized.dynamic: modules with quantized weights whose activations are
quantized on the fly at each call."""
from .linear import Linear, LinearPackedParams  # noqa: F401
from .rnn import LSTM, GRU  # noqa: F401
