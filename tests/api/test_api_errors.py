def test_an_unknown_api_path_answers_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_wrong_method_answers_json_405_with_allow(world):
    client = world.bearer(world.alice)
    response = client.put(
        f"/api/v1/locks/{world.lock.pk}", data={}, content_type="application/json"
    )
    assert response.status_code == 405
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert "PUT" in body["message"]
    assert "GET" in response["Allow"]


def test_web_pages_keep_their_html_404(world):
    response = world.client(world.alice).get("/locks/999999/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_text_a_database_cannot_store_is_a_422_and_nothing_is_stored(world):
    from doorkeep.properties.models import Property

    client = world.bearer(world.alice)
    before = Property.objects.count()

    def add(name: str):
        body = f'{{"organization_id": {world.org.pk}, "name": "{name}"}}'
        return client.post("/api/v1/properties", data=body, content_type="application/json")

    for name in ("a\\u0000b", "half \\ud800 a pair"):
        response = add(name)
        assert response.status_code == 422, response.content
        assert response.json()["code"] == "validation_error"
        assert "NUL characters or unpaired surrogates" in response.json()["message"]
    assert Property.objects.count() == before
    # A whole pair is one character (an emoji): fine.
    response = add("door \\ud83d\\udeaa")
    assert response.status_code == 201, response.content
    assert Property.objects.get(pk=response.json()["id"]).name == "door \U0001f6aa"
    # In a query string too.
    response = client.get(f"/api/v1/locks/{world.lock.pk}/events?outcome=%00")
    assert response.status_code == 422
    assert "NUL characters" in response.json()["message"]
