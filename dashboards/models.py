# Models live beside the half of the app they serve; Django finds them through this module.
from .account.models import LoginLinkUse

__all__ = ["LoginLinkUse"]
