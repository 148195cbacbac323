"""GET /jobs a page at a time: newest first, each page linking the next (older) one."""

from __future__ import annotations

from typing import Any

from test_app import submit  # type: ignore[import-not-found]


def distinct_jobs(count: int) -> list[dict[str, Any]]:
    """`count` different requests (identical ones in flight would be one job)."""
    return [
        {
            "algorithm": "usual_residence",
            "parameters": {"min_nights": 1 + k % 7, "night_start_hour": 16 + k // 7},
        }
        for k in range(count)
    ]


def pages(service: Any, headers: dict[str, str], first: str) -> list[dict[str, Any]]:
    """Every page from `first`, following links.next."""
    found, link = [], first
    while link is not None:
        answer = service.client.get(link, headers=headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["links"]["self"] == link
        if page["links"]["next"] is None:
            assert "link" not in answer.headers
        else:
            assert answer.headers["link"] == f'<{page["links"]["next"]}>; rel="next"'
        found.append(page)
        link = page["links"]["next"]
    return found


def test_jobs_are_listed_newest_first_a_page_at_a_time(idle_service):
    service = idle_service
    alice = service.auth("alice")
    submitted = [submit(service, alice, body)["id"] for body in distinct_jobs(7)]
    walked = pages(service, alice, "/jobs?limit=3")
    assert [len(page["jobs"]) for page in walked] == [3, 3, 1]
    assert [job["id"] for page in walked for job in page["jobs"]] == submitted[::-1]
    assert walked[0]["links"]["next"] == f"/jobs?limit=3&before={submitted[4]}"
    # Exactly a page's worth: no empty page after it.
    assert [len(page["jobs"]) for page in pages(service, alice, "/jobs?limit=7")] == [7]
    # Without a limit: the 100 newest, as before paging.
    everything = service.client.get("/jobs", headers=alice).json()
    assert len(everything["jobs"]) == 7 and everything["links"]["next"] is None

    # A job submitted while paging joins the first page, and shifts none of the later ones.
    first = service.client.get("/jobs?limit=3", headers=alice).json()
    newer = submit(service, alice, distinct_jobs(8)[7])["id"]
    rest = pages(service, alice, first["links"]["next"])
    assert [job["id"] for page in rest for job in page["jobs"]] == submitted[3::-1]
    assert service.client.get("/jobs?limit=1", headers=alice).json()["jobs"][0]["id"] == newer

    # A steward pages through everyone's; another analyst cannot start from alice's job.
    steward = pages(service, service.auth("steward"), "/jobs?limit=5")
    assert [job["id"] for page in steward for job in page["jobs"]] == [newer, *submitted[::-1]]
    refused = service.client.get(f"/jobs?before={submitted[3]}", headers=service.auth("bob"))
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(f"before: no job {submitted[3]} of yours")


def test_page_bounds_are_refused_with_a_clear_problem(idle_service):
    service = idle_service
    alice = service.auth("alice")
    for query, said in (
        ("limit=0", "field 'query.limit': Input should be greater than or equal to 1"),
        ("limit=1001", "field 'query.limit': Input should be less than or equal to 1000"),
        ("limit=ten", "field 'query.limit': Input should be a valid integer"),
        ("before=123", "field 'query.before': String should match pattern"),
    ):
        answer = service.client.get(f"/jobs?{query}", headers=alice)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["detail"].startswith(said), (query, answer.json())
    unknown = service.client.get(f"/jobs?before={'0' * 32}", headers=alice)
    assert unknown.status_code == 422
    assert "take it from the links.next of a page" in unknown.json()["detail"]


def test_paging_is_in_the_openapi_schema(idle_service):
    spec = idle_service.client.get("/openapi.json").json()
    listing = spec["paths"]["/jobs"]["get"]
    parameters = {item["name"]: item for item in listing["parameters"]}
    assert parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert "links.next" in parameters["before"]["description"]
    assert "422" in listing["responses"]
    page = spec["components"]["schemas"]["JobList"]
    assert set(page["required"]) == {"jobs", "links"}
    links = spec["components"]["schemas"]["JobListLinks"]["properties"]
    assert "older" in listing["description"] and "next" in links
