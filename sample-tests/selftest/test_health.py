"""The service answers, and says its database is fine."""

import pytest

pytestmark = pytest.mark.selftest


def test_health_is_ok(api):
    health = api.get("/api/health").expect(200).json()
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert isinstance(health["version"], str) and health["version"]


def test_openapi_document_describes_the_api(api):
    document = api.get("/api/openapi.json").expect(200).json()
    assert str(document.get("openapi", "")).startswith("3"), f"not OpenAPI 3: {document.get('openapi')!r}"
    paths = document.get("paths", {})
    for path in ("/api/runs", "/api/environments", "/api/tests", "/api/health"):
        assert path in paths, f"the OpenAPI document has no {path}"


def test_metrics_are_prometheus_text(api):
    answer = api.get("/metrics").expect(200)
    assert answer.content_type.startswith("text/plain"), answer.content_type
    assert "# TYPE" in answer.text, "no metric family in /metrics"
