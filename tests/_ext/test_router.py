"""Behaviour of Router, run over both twins by the ``router_module`` fixture."""

from __future__ import annotations

import pytest


@pytest.fixture
def Router(router_module):  # noqa: N802 - stands for the class
    return router_module.Router


@pytest.fixture
def api(Router):
    """A slice of the v1 contract, handlers named after their route."""
    router = Router()
    for method, template in [
        ("GET", "/api/v1/system/health"),
        ("GET", "/api/v1/system/metrics"),
        ("GET", "/api/v1/tasks"),
        ("POST", "/api/v1/tasks"),
        ("GET", "/api/v1/tasks/{id}"),
        ("PATCH", "/api/v1/tasks/{id}"),
        ("DELETE", "/api/v1/tasks/{id}"),
        ("GET", "/api/v1/tasks/search"),
        ("GET", "/api/v1/project/context/{mode}"),
        ("GET", "/api/v1/repos/{owner}/{name}/files/{path}"),
    ]:
        router.add(method, template, f"{method} {template}")
    return router


def test_exact_path_finds_its_handler_with_no_params(api):
    match = api.resolve("GET", "/api/v1/system/health")
    assert (match.status, match.handler, match.params) == (
        200,
        "GET /api/v1/system/health",
        {},
    )
    assert match.template == "/api/v1/system/health"


def test_parametrised_path_gives_the_segment_as_param(api):
    match = api.resolve("GET", "/api/v1/tasks/42")
    assert (match.status, match.handler, match.params) == (
        200,
        "GET /api/v1/tasks/{id}",
        {"id": "42"},
    )
    assert match.template == "/api/v1/tasks/{id}"


def test_several_params_in_one_path_come_back_by_name(api):
    match = api.resolve("GET", "/api/v1/repos/octo/cat/files/README.md")
    assert match.params == {"owner": "octo", "name": "cat", "path": "README.md"}


def test_exact_segment_wins_over_parameter(api):
    assert api.resolve("GET", "/api/v1/tasks/search").handler == "GET /api/v1/tasks/search"
    assert api.resolve("GET", "/api/v1/tasks/searc").handler == "GET /api/v1/tasks/{id}"


def test_literal_branch_that_dead_ends_backs_up_to_the_parameter(Router):
    router = Router()
    router.add("GET", "/a/b/{x}/c", "literal b")
    router.add("GET", "/a/{y}/d/e", "param")
    match = router.resolve("GET", "/a/b/d/e")
    assert (match.handler, match.params) == ("param", {"y": "b"})
    # and the failed branch left no value behind
    assert router.resolve("GET", "/a/b/z/c").params == {"x": "z"}


def test_unknown_path_is_404_with_nothing_allowed(api):
    match = api.resolve("GET", "/api/v1/nope")
    assert (match.status, match.handler, match.params, match.allowed, match.template) == (
        404,
        None,
        {},
        (),
        None,
    )


def test_inner_node_of_the_trie_is_not_a_path(api):
    assert api.resolve("GET", "/api/v1/repos/octo").status == 404
    assert api.resolve("GET", "/api/v1").status == 404


def test_path_with_a_known_route_but_other_method_is_405_with_sorted_allow(api):
    match = api.resolve("PUT", "/api/v1/tasks/42")
    assert (match.status, match.handler) == (405, None)
    assert match.allowed == ("DELETE", "GET", "HEAD", "PATCH")


def test_exact_path_405_lists_its_methods(api):
    match = api.resolve("DELETE", "/api/v1/tasks")
    assert (match.status, match.allowed) == (405, ("GET", "HEAD", "POST"))


def test_found_match_also_carries_allowed_methods(api):
    assert api.resolve("POST", "/api/v1/tasks").allowed == ("GET", "HEAD", "POST")


def test_head_is_served_by_the_get_handler(api):
    match = api.resolve("HEAD", "/api/v1/tasks/7")
    assert (match.status, match.handler, match.params) == (
        200,
        "GET /api/v1/tasks/{id}",
        {"id": "7"},
    )
    assert api.resolve("HEAD", "/api/v1/system/health").handler == "GET /api/v1/system/health"


def test_head_is_405_where_there_is_no_get(Router):
    router = Router()
    router.add("POST", "/api/v1/query", "q")
    match = router.resolve("HEAD", "/api/v1/query")
    assert (match.status, match.allowed) == (405, ("POST",))


def test_explicit_head_route_wins_over_the_get_handler(Router):
    router = Router()
    router.add("GET", "/x", "get")
    router.add("HEAD", "/x", "head")
    assert router.resolve("HEAD", "/x").handler == "head"
    assert router.resolve("GET", "/x").allowed == ("GET", "HEAD")


def test_methods_are_case_sensitive(api):
    assert api.resolve("get", "/api/v1/system/health").status == 405


def test_trailing_slash_is_a_different_path(Router):
    router = Router()
    router.add("GET", "/api/v1/tasks", "list")
    router.add("GET", "/api/v1/dir/", "dir")
    router.add("GET", "/api/v1/tasks/{id}", "one")
    assert router.resolve("GET", "/api/v1/tasks/").status == 404
    assert router.resolve("GET", "/api/v1/dir").status == 404
    assert router.resolve("GET", "/api/v1/dir/").handler == "dir"


def test_trailing_slash_template_with_params(Router):
    router = Router()
    router.add("GET", "/t/{id}/", "slash")
    assert router.resolve("GET", "/t/1/").params == {"id": "1"}
    assert router.resolve("GET", "/t/1").status == 404


def test_parameter_never_matches_an_empty_segment(api):
    assert api.resolve("GET", "/api/v1/project/context/").status == 404
    assert api.resolve("GET", "/api/v1/repos//cat/files/x").status == 404


def test_root_path(Router):
    router = Router()
    router.add("GET", "/", "root")
    assert router.resolve("GET", "/").handler == "root"
    assert router.resolve("GET", "").status == 404


def test_path_not_starting_with_slash_is_404(api):
    assert api.resolve("GET", "*").status == 404
    assert api.resolve("GET", "api/v1/tasks/1").status == 404
    assert api.resolve("OPTIONS", "").status == 404


def test_params_are_percent_decoded_after_splitting(api):
    match = api.resolve("GET", "/api/v1/repos/o/n/files/src%2Fmain.py")
    assert match.params["path"] == "src/main.py"
    assert api.resolve("GET", "/api/v1/tasks/caf%C3%A9%20au%20lait").params == {
        "id": "café au lait"
    }


def test_encoded_slash_does_not_reach_a_deeper_route(Router):
    router = Router()
    router.add("GET", "/a/{x}", "one")
    router.add("GET", "/a/{x}/{y}", "two")
    match = router.resolve("GET", "/a/b%2Fc")
    assert (match.handler, match.params) == ("one", {"x": "b/c"})


def test_invalid_utf8_in_a_param_becomes_replacement_character(api):
    assert api.resolve("GET", "/api/v1/tasks/%FF").params == {"id": "\ufffd"}


def test_literal_segments_are_compared_raw(api):
    assert api.resolve("GET", "/api/v1/system/%68ealth").status == 404


def test_query_string_is_not_the_routers_business(api):
    # The HTTP layer strips the query; an unstripped one is just another path.
    assert api.resolve("GET", "/api/v1/system/health?x=1").status == 404
    assert api.resolve("GET", "/api/v1/tasks/1?x=1").params == {"id": "1?x=1"}


def test_allowed_methods_helper(api):
    assert api.allowed_methods("/api/v1/tasks/9") == ("DELETE", "GET", "HEAD", "PATCH")
    assert api.allowed_methods("/api/v1/system/health") == ("GET", "HEAD")
    assert api.allowed_methods("/nope") == ()


def test_different_methods_may_name_the_params_of_one_shape_differently(Router):
    router = Router()
    router.add("GET", "/tasks/{id}", "get")
    router.add("DELETE", "/tasks/{task_id}", "delete")
    assert router.resolve("GET", "/tasks/1").params == {"id": "1"}
    assert router.resolve("DELETE", "/tasks/1").params == {"task_id": "1"}


@pytest.mark.parametrize(
    "first, second",
    [
        ("/api/v1/tasks", "/api/v1/tasks"),
        ("/api/v1/tasks/{id}", "/api/v1/tasks/{id}"),
        ("/api/v1/tasks/{id}", "/api/v1/tasks/{task_id}"),
    ],
)
def test_duplicate_registration_raises(Router, first, second):
    router = Router()
    router.add("GET", first, "a")
    with pytest.raises(ValueError, match="conflicts"):
        router.add("GET", second, "b")
    assert router.resolve("GET", first.replace("{id}", "1")).handler == "a"
    assert len(router) == 1


@pytest.mark.parametrize(
    "template",
    [
        "api/v1/tasks",
        "",
        "/api//tasks",
        "/files/{name}.json",
        "/x/{1abc}",
        "/x/{}",
        "/x/{a}/{a}",
        "/x?y=1",
        "/x#frag",
        "/x/{a",
    ],
)
def test_invalid_templates_raise_value_error(Router, template):
    with pytest.raises(ValueError):
        Router().add("GET", template, None)


@pytest.mark.parametrize("method", ["", "GE T", "GET\r\n", "G:T"])
def test_invalid_methods_raise_value_error(Router, method):
    with pytest.raises(ValueError, match="method"):
        Router().add(method, "/x", None)


def test_non_str_template_raises_type_error(Router):
    with pytest.raises(TypeError):
        Router().add("GET", b"/x", None)


def test_extension_methods_are_routable(Router):
    router = Router()
    router.add("M-SEARCH", "/x", "m")
    assert router.resolve("M-SEARCH", "/x").handler == "m"


def test_routes_lists_every_registration_and_len_counts_them(api):
    listed = sorted((method, template) for method, template, _ in api.routes())
    assert len(listed) == len(api) == 10
    assert ("DELETE", "/api/v1/tasks/{id}") in listed
    assert all(handler == f"{m} {t}" for m, t, handler in api.routes())


def test_each_resolve_returns_a_fresh_match(api):
    first = api.resolve("GET", "/api/v1/system/health")
    first.params["x"] = "y"  # the caller owns it
    second = api.resolve("GET", "/api/v1/system/health")
    assert second is not first and second.params == {}


def test_match_repr_names_its_fields(api):
    text = repr(api.resolve("GET", "/api/v1/tasks/1"))
    assert text.startswith("Match(status=200, handler='GET /api/v1/tasks/{id}'")
    assert "params={'id': '1'}" in text


def test_any_object_can_be_a_handler(Router):
    router = Router()
    handler = object()
    router.add("GET", "/x/{y}", handler)
    assert router.resolve("GET", "/x/1").handler is handler


def test_deep_request_path_does_not_recurse_past_the_table(api):
    # The walk only goes as deep as the templates do.
    assert api.resolve("GET", "/api" * 5000).status == 404
    assert api.resolve("GET", "/api/v1/tasks" + "/x" * 5000).status == 404


def test_non_ascii_templates_and_paths_match_as_text(Router):
    # A raw request target is ASCII; a caller may still pass decoded text.
    router = Router()
    router.add("GET", "/café/{x}", "cafe")
    router.add("GET", "/a/{x}", "a")
    assert router.resolve("GET", "/café/crème").params == {"x": "crème"}
    assert router.resolve("GET", "/a/é%41").params == {"x": "éA"}
    assert router.resolve("GET", "/caf%C3%A9/1").status == 404


def test_node_with_many_literal_siblings_still_prefers_them_and_backs_up(Router):
    # The compiled twin scans a few siblings in place and hashes when there are many.
    router = Router()
    for index in range(40):
        router.add("GET", f"/w/s{index}/{{x}}", index)
    router.add("GET", "/w/{y}/z", "param")
    assert router.resolve("GET", "/w/s39/q").handler == 39
    assert router.resolve("GET", "/w/s7/z").params == {"x": "z"}
    assert router.resolve("GET", "/w/other/z").params == {"y": "other"}
    assert router.resolve("GET", "/w/s7").status == 404
