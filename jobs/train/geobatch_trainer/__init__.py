"""geobatch_trainer: the PyTorch trainer driven by the geobatch `train` job (see ../PROTOCOL.md)."""

__version__ = "1"
