"""The test catalog: the tree of test files under the tests root, and
uploading a file into it (removed again at the end)."""

import urllib.parse
import uuid

import pytest

pytestmark = pytest.mark.selftest


def test_catalog_lists_the_sample_tests(api):
    catalog = api.get("/api/tests").expect(200).json()
    files = {entry["path"]: entry for entry in catalog["files"]}
    paths = [entry["path"] for entry in catalog["files"]]
    assert paths == sorted(paths), "files are not sorted by path"
    assert {"smoke", "dummy", "selftest"} <= set(catalog["directories"])
    fast = files["smoke/test_fast.py"]
    assert fast["directory"] == "smoke" and fast["name"] == "test_fast.py"
    assert isinstance(fast["size"], int) and fast["size"] > 0
    assert fast["modified_at"]
    assert not any(path.endswith("conftest.py") for path in files), "conftest.py is no test file"


def test_a_file_reads_as_text(api):
    answer = api.get("/api/tests/smoke/test_fast.py").expect(200)
    assert answer.content_type.startswith("text/plain"), answer.content_type
    assert "def test_arithmetic" in answer.text


def multipart(fields):
    """Encodes (name, value, filename or None) triples as multipart/form-data."""
    boundary = f"----selftest{uuid.uuid4().hex}"
    parts = []
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: text/x-python\r\n"
        parts.append(head.encode() + b"\r\n" + value + b"\r\n")
    data = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return data, f"multipart/form-data; boundary={boundary}"


def upload(api, directory, name, source, overwrite=False):
    fields = [("directory", directory.encode(), None), ("file", source, name)]
    if overwrite:
        fields.append(("overwrite", b"true", None))
    data, content_type = multipart(fields)
    return api.post("/api/tests", data=data, content_type=content_type)


def test_upload_then_delete(api):
    # A fixed directory (one to leave behind, not one per run), a unique name.
    directory = "uploads/selftest"
    name = f"test_uploaded_{uuid.uuid4().hex[:8]}.py"
    path = f"{directory}/{name}"
    source = b"def test_uploaded():\n    assert True\n"
    answer = upload(api, directory, name, source).expect(201)
    try:
        entry = answer.json()
        assert entry["path"] == path
        assert entry["size"] == len(source)
        assert api.get(f"/api/tests/{path}").expect(200).body == source
        listed = [file["path"] for file in api.get("/api/tests").expect(200).json()["files"]]
        assert path in listed

        api.expect_error(upload(api, directory, name, source), 409, "conflict")
        upload(api, directory, name, source + b"# changed\n", overwrite=True).expect(201)
    finally:
        api.delete(f"/api/tests/{path}")
    api.expect_error(api.get(f"/api/tests/{path}"), 404, "not_found")


@pytest.mark.parametrize(
    ("directory", "name", "source"),
    [
        pytest.param("uploads", "helper.py", b"x = 1\n", id="not-a-test-file-name"),
        pytest.param("uploads", "test_broken.py", b"def test_x(:\n    pass\n", id="syntax-error"),
        pytest.param("../outside", "test_x.py", b"x = 1\n", id="directory-escape"),
        pytest.param("a/b/c/d/e", "test_x.py", b"x = 1\n", id="too-deep"),
        pytest.param("bad dir!", "test_x.py", b"x = 1\n", id="bad-directory-name"),
    ],
)
def test_a_bad_upload_is_422(api, directory, name, source):
    api.expect_error(upload(api, directory, name, source), 422, "validation")
    answer = api.get("/api/tests/" + urllib.parse.quote(f"{directory}/{name}"))
    assert answer.status != 200, "a rejected upload was stored"
