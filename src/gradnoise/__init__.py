"""gradnoise: measure the gradient noise of SGD and Adam and test the heavy-tail explanation of their
generalization gap (Zhou et al., NeurIPS 2020), with the controls the original work lacked."""

__version__ = "0.1.0"
