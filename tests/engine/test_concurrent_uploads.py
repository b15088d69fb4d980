"""Concurrent uploads never leave a model's head on a missing version (issue 17, point 3).

Before: of two identical uploads of a new model, the loser of the head's CAS deleted the version
folder that the winner's head pointed at, and ``instantiate`` then made 0 node instances."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from wfengine import catalog, deployments, keys
from wfengine.errors import Conflict, SpaceDataError
from wfengine.space.embedded import EmbeddedSpace
from wfengine.space.prefixed import PrefixedSpace

from engine_helpers import EXAMPLE, REPO

OTHER = REPO / "examples" / "webapp" / "app.yaml"


def _race(db: str, paths, name: str = "m"):
    """Upload ``paths[i]`` from thread i at once, each with its own Space client."""
    barrier = threading.Barrier(len(paths))
    results, errors = [None] * len(paths), [None] * len(paths)

    def upload(i: int) -> None:
        space = None
        try:
            space = EmbeddedSpace(path=db)
            barrier.wait(timeout=120)
            results[i] = catalog.upload_model(space, str(paths[i]), name)
        except Exception as exc:     # noqa: BLE001 (recorded, asserted below)
            errors[i] = exc
            barrier.abort()          # the others must not wait for this one forever
        finally:
            if space is not None:
                space.close()
    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def _instantiate_all(db: str, count: int):
    space = EmbeddedSpace(path=db)
    try:
        head = catalog.model_head(space, "m")
        made = [deployments.create_instance(space, "m", "i%d" % i) for i in range(count)]
        return head, made
    finally:
        space.close()


def test_ten_identical_uploads_of_a_new_model_leave_it_whole(tmp_path: Path):
    """10 uploads of the same new model at once all succeed, and every instance made afterwards
    has the model's full set of node instances."""
    db = str(tmp_path / "s.db")
    results, errors = _race(db, [EXAMPLE] * 10)
    assert errors == [None] * 10
    expected = results[0]["instances"]
    assert expected > 0 and all(r["digest"] == results[0]["digest"] for r in results)
    head, made = _instantiate_all(db, 10)
    assert head["digest"] == results[0]["digest"]
    assert [m["nodes"] for m in made] == [expected] * 10


def test_concurrent_different_contents_leave_a_complete_head(tmp_path: Path):
    """Uploads of two different contents at once: each either succeeds or is refused as a
    conflict, and the head ends on a complete version whose instances are whole."""
    db = str(tmp_path / "s.db")
    results, errors = _race(db, [EXAMPLE, OTHER] * 5)
    assert all(e is None or isinstance(e, Conflict) for e in errors), errors
    assert any(r is not None for r in results)
    head, made = _instantiate_all(db, 3)
    assert [m["nodes"] for m in made] == [head["instances"]] * 3
    # Only the head's version is left: the losers' folders were collected.
    space = EmbeddedSpace(path=db)
    try:
        digests = {k.split("/")[3] for k in space.keys(keys.model_versions("m"))}
    finally:
        space.close()
    assert digests == {head["digest"]}


def test_versions_an_instance_uses_are_kept_and_the_others_collected(tmp_path: Path):
    db = str(tmp_path / "s.db")
    space = EmbeddedSpace(path=db)
    try:
        first = catalog.upload_model(space, str(EXAMPLE), "m")
        deployments.create_instance(space, "m", "old")
        second = catalog.upload_model(space, str(OTHER), "m")
        third = catalog.upload_model(space, str(EXAMPLE), "m")     # back to the first content
        assert third["digest"] == first["digest"]
        versions = {k.split("/")[3] for k in space.keys(keys.model_versions("m"))}
        # second: no head, no instance -> collected; first: the head and "old" use it.
        assert versions == {first["digest"]}
        catalog.upload_model(space, str(OTHER), "m")
        versions = {k.split("/")[3] for k in space.keys(keys.model_versions("m"))}
        assert versions == {first["digest"], second["digest"]}   # "old" still runs on the first
        deployments.delete_instance(space, "m", "old")
        versions = {k.split("/")[3] for k in space.keys(keys.model_versions("m"))}
        assert versions == {second["digest"]}
    finally:
        space.close()


def test_instantiate_of_a_missing_version_names_model_and_digest(tmp_path: Path):
    """A head whose version is gone (a store damaged by the old race): an error naming the model
    and the digest, never an instance of 0 node instances; uploading the same content repairs."""
    space = EmbeddedSpace(path=str(tmp_path / "s.db"))
    try:
        r = catalog.upload_model(space, str(EXAMPLE), "m")
        space.delete_tree(keys.model_version("m", r["digest"]))
        with pytest.raises(SpaceDataError, match=r"model m: version %s is missing" % r["digest"]):
            deployments.create_instance(space, "m", "i")
        assert space.get(keys.instance_head("m", "i")) is None
        again = catalog.upload_model(space, str(EXAMPLE), "m")
        assert again["changed"] and again.get("repaired")
        assert deployments.create_instance(space, "m", "i")["nodes"] == r["instances"]
    finally:
        space.close()


def test_instantiate_of_an_incomplete_version_is_an_error(tmp_path: Path):
    space = EmbeddedSpace(path=str(tmp_path / "s.db"))
    try:
        r = catalog.upload_model(space, str(EXAMPLE), "m")
        victim = r["templates"][0]
        space.delete(keys.model_template("m", r["digest"], victim))
        with pytest.raises(SpaceDataError, match=r"version %s is incomplete .*no template %s"
                           % (r["digest"], victim)):
            deployments.create_instance(space, "m", "i")
    finally:
        space.close()


class _CollectedMidUpload(EmbeddedSpace):
    """A real embedded Space on which a collection runs (from another client) right after the
    first chunk of a version folder is written: the worst moment for an upload."""

    def __init__(self, path: str) -> None:
        super().__init__(path=path)
        self.path_ = path
        self.collected = []

    def write_chunked(self, ops) -> None:
        super().write_chunked(ops)
        if not self.collected:
            other = EmbeddedSpace(path=self.path_)
            try:
                self.collected.append(catalog.collect_versions(other, "m"))
            finally:
                other.close()


def test_an_upload_whose_folder_is_collected_meanwhile_writes_it_again(tmp_path: Path):
    space = _CollectedMidUpload(str(tmp_path / "s.db"))
    try:
        r = catalog.upload_model(space, str(EXAMPLE), "m")
        assert space.collected == [[r["digest"]]]          # the folder was removed mid-upload
        assert deployments.create_instance(space, "m", "i")["nodes"] == r["instances"]
        assert not space.keys(keys.model_version("m", r["digest"]) + "claim/")
    finally:
        space.close()


class _RacedBySameContent(EmbeddedSpace):
    """A real embedded Space on which another client completes an upload of the same content
    while this one is writing its folder: the interleaving of issue 17 (the loser of the head's
    CAS then deleted the folder the winner's head pointed at)."""

    def __init__(self, path: str) -> None:
        super().__init__(path=path)
        self.path_ = path
        self.winner = None

    def write_chunked(self, ops) -> None:
        super().write_chunked(ops)
        if self.winner is None:
            other = EmbeddedSpace(path=self.path_)
            try:
                self.winner = catalog.upload_model(other, str(EXAMPLE), "m")
            finally:
                other.close()


def test_the_loser_of_an_identical_race_keeps_the_winners_version(tmp_path: Path):
    space = _RacedBySameContent(str(tmp_path / "s.db"))
    try:
        loser = catalog.upload_model(space, str(EXAMPLE), "m")
        assert space.winner["changed"] and loser["digest"] == space.winner["digest"]
        assert catalog.model_head(space, "m")["digest"] == loser["digest"]
        assert deployments.create_instance(space, "m", "i")["nodes"] == loser["instances"] > 0
    finally:
        space.close()


def test_wfctl_instantiate_of_a_missing_version_exits_2(tmp_path: Path, capsys):
    """Issue 17: `instantiate` printed "created (0 node instances)" with rc 0."""
    from wfengine import cli
    db = str(tmp_path / "s.db")
    assert cli.main(["--space", db, "--prefix", "wf/", "model", str(EXAMPLE), "m"]) == 0
    space = PrefixedSpace(EmbeddedSpace(path=db), "wf/")
    try:
        digest = catalog.model_head(space, "m")["digest"]
        space.delete_tree(keys.model_version("m", digest))
    finally:
        space.close()
    capsys.readouterr()
    assert cli.main(["--space", db, "--prefix", "wf/", "instantiate", "m", "i"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == ("wfctl: model m: version %s is missing from the Space (its head points at it); "
                       "upload the model again to restore it\n" % digest)
