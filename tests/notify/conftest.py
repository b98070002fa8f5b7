from receivers import receiver

__all__ = ["receiver"]
