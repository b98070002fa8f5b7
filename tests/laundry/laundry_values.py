"""Values the laundry tests share (imported by name: every test folder has a
conftest module, so tests do not import from theirs)."""

UID = "04A1B2C3D4E5F6"  # Rosa's badge, issued by the platform
SECRET = "machine-secret-0001-abcd"  # every test machine's device secret
WASHER = "WM-TEST-0001"
DRYER = "WD-TEST-0002"
