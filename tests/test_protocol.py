"""The worker protocol (cae/protocol.py): every kind of message crosses a real socket pair intact,
each side reads only the kinds meant for it, and every kind sent is handled on arrival."""

import inspect
import socket
from multiprocessing.connection import Connection

import numpy as np
import pytest

from cae import cluster, jobs, protocol, worker
from cae.experiment import Identity
from cae.train import Progress

EXAMPLES = [
    protocol.Train(
        1,
        {"latent_dim": 16},
        "sample",
        "f" * 64,
        np.zeros((2, 3, 32, 32), np.uint8),
        Identity("cpu", "fp32", "a" * 64, "b" * 64),
    ),
    protocol.Sweep(2, {"source": "run", "budgets": [100], "seeds": 1}, "sample", "f" * 64),
    protocol.Task(3, "step_time", {"latent_dim": 16}),
    protocol.Cancel(4),
    protocol.Stop(),
    protocol.Started(5, 1234),
    protocol.Capacity(2, 1, "127.0.0.1:6379"),
    protocol.Unavailable("The Ray cluster at 127.0.0.1:6379 cannot be reached."),
    protocol.Progress(5, Progress("autoencoder", 1, 2, 3, 4, 0.5, 1.5, 9.0)),
    protocol.Epoch(5, "autoencoder", {"epoch": 1, "train_mse": 0.1}),
    protocol.Reconstruction(5, 1, np.ones((2, 3, 32, 32), np.float32)),
    protocol.Held(5),
    protocol.Point(2, {"budget": 100, "seed": 0}),
    protocol.Done(5, "/runs/z16", False),
    protocol.Result(3, 0.25),
    protocol.Cancelled(5),
    protocol.Failed(5, "The device ran out of memory."),
]


def test_the_examples_cover_every_kind():
    assert {type(m) for m in EXAMPLES} == set(protocol.TO_WORKER) | set(protocol.TO_SERVER)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_crosses_a_real_socket_pair_intact(message):
    ours, theirs = socket.socketpair()
    a, b = Connection(ours.detach()), Connection(theirs.detach())
    try:
        a.send_bytes(protocol.encode(message))
        kinds = protocol.TO_WORKER if isinstance(message, protocol.TO_WORKER) else protocol.TO_SERVER
        got = protocol.decode(b.recv_bytes(), kinds)
    finally:
        a.close(), b.close()
    assert type(got) is type(message)
    for name, value in vars(message).items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(getattr(got, name), value)
        else:
            assert getattr(got, name) == value


def test_a_message_meant_for_the_other_side_is_an_error():
    with pytest.raises(protocol.ProtocolError, match="unexpected message Done"):
        protocol.decode(protocol.encode(protocol.Done(1, "/runs/x", False)), protocol.TO_WORKER)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(protocol.encode(("train", 1)), protocol.TO_SERVER)  # the old untyped tuples


def test_every_kind_sent_is_handled_by_the_side_that_receives_it():
    server, work = inspect.getsource(jobs.JobManager._apply), inspect.getsource(worker.Worker.run)
    about_the_member = inspect.getsource(cluster.DriverMember.absorb)  # the Ray driver's own reports
    for kind in protocol.TO_SERVER:
        if kind in (protocol.Capacity, protocol.Unavailable):
            assert f"protocol.{kind.__name__})" in about_the_member, kind
        else:
            assert f"case protocol.{kind.__name__}(" in server, kind
    for kind in protocol.TO_WORKER:
        assert f"case protocol.{kind.__name__}(" in work, kind
