"""Visualisation: label colouring, skeleton drawing, IUV rendering and contact sheets."""

from .draw import colorize, draw_skeleton, iuv_to_rgb
from .contact_sheet import contact_sheet

__all__ = ["colorize", "contact_sheet", "draw_skeleton", "iuv_to_rgb"]
