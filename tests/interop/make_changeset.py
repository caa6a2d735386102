#!/usr/bin/env python3
"""make_changeset.py MODDIR OUT - write fixture.CHANGES as a ChangeSet (with
its count trailer) using Google's protobuf runtime and the fieldvault_pb2
module protoc generated into MODDIR.  Used by tests/test_wire.c: the C
decoder must accept what another implementation writes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402


def main():
    moddir, out = sys.argv[1], sys.argv[2]
    pb = fixture.load_module(moddir)
    cs = pb.ChangeSet()
    cs.version = 1
    cs.origin_device = fixture.ORIGIN
    for c in fixture.CHANGES:
        m = cs.changes.add()
        m.table = c["table"]
        m.row_id = c["row_id"]
        m.field = c["field"]
        for kind in ("text", "real", "sealed"):
            if kind in c:
                setattr(m.value, kind, c[kind])
        m.hlc = c["hlc"]
        m.base_hlc = c["base_hlc"]
        m.device_id = fixture.DEVICE
        m.device_seq = c["device_seq"]
    cs.count = len(fixture.CHANGES)
    with open(out, "wb") as f:
        f.write(cs.SerializeToString())
    print("wrote %d changes" % len(fixture.CHANGES))


if __name__ == "__main__":
    main()
