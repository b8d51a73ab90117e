"""Trained models shipped with the package (see tinysegnet.engine.pretrained)."""
