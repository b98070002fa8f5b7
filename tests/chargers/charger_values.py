"""Values the charging-station tests share (imported by name: every test
folder has a conftest module, so tests do not import from theirs)."""

UID = "04A1B2C3D4E5F6"  # Rosa's badge
PASSWORD = "station-password-0001"  # every test station's password
