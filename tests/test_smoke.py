from doorkeep.keys import access
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key


def test_a_key_opens_and_a_revoked_key_does_not(world):
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name="Dana", email="dana@example.com"),
            credentials=[CredentialSpec("pin", "123456"), CredentialSpec("tag", "04:a2:2b:1c")],
        ),
    )
    world.lock.refresh_from_db()
    assert world.lock.credential_version == 1
    assert access.decide(world.lock, "pin", "123456").granted
    assert access.decide(world.lock, "tag", "04A22B1C").granted
    assert access.decide(world.lock, "pin", "654321").reason == "unknown_credential"
    revoke_key(world.alice, key.pk)
    assert access.decide(world.lock, "pin", "123456").reason == "revoked"
