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
