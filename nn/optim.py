"""``nn.optim`` is ``autodiff.optim`` (PyTorch's ``torch.optim``): SGD, Adam, AdamW,
RMSprop and the learning-rate schedulers in ``nn.optim.lr_scheduler``."""

from autodiff.optim import *  # noqa: F403
from autodiff.optim import __all__, lr_scheduler  # noqa: F401
