"""A local web page over a trained model (``spd serve``)."""

from .app import DemoApp, make_server

__all__ = ["DemoApp", "make_server"]
