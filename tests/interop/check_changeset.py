#!/usr/bin/env python3
"""check_changeset.py MODDIR IN - parse IN (written by the C encoder) with
Google's protobuf runtime and check it holds exactly fixture.CHANGES, the
header and the count trailer.  Exit status 0 and "ok N changes" when it
does; 1 and the first difference when it does not."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402


def check(cs):
    if cs.version != 1:
        return "version %d" % cs.version
    if cs.origin_device != fixture.ORIGIN:
        return "origin_device %r" % cs.origin_device
    if not cs.HasField("count"):
        return "no count trailer"
    if cs.count != len(cs.changes) or cs.count != len(fixture.CHANGES):
        return "count %d, %d changes" % (cs.count, len(cs.changes))
    for i, (m, c) in enumerate(zip(cs.changes, fixture.CHANGES)):
        got = dict(table=m.table, row_id=m.row_id, field=m.field, hlc=m.hlc,
                   base_hlc=m.base_hlc, device_seq=m.device_seq)
        kind = m.value.WhichOneof("kind") if m.HasField("value") else None
        if kind is not None:
            got[kind] = getattr(m.value, kind)
        want = {k: v for k, v in c.items()}
        if got != want:
            return "change %d: got %r, want %r" % (i, got, want)
        if m.device_id != fixture.DEVICE:
            return "change %d: device_id %r" % (i, m.device_id)
    return None


def main():
    moddir, path = sys.argv[1], sys.argv[2]
    pb = fixture.load_module(moddir)
    with open(path, "rb") as f:
        data = f.read()
    cs = pb.ChangeSet()
    cs.ParseFromString(data)
    # Field order on the wire: the trailer must be the last field written.
    if not data.endswith(b"\x78" + bytes([len(fixture.CHANGES)])):
        print("the count trailer is not the last field")
        return 1
    problem = check(cs)
    if problem:
        print(problem)
        return 1
    print("ok %d changes" % len(cs.changes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
