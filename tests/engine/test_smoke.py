
from kaskad.engine.enroll import enroll
from kaskad.store.engine import transaction
from kaskad_channels import test as test_channel

from .helpers import add_contacts, flow_doc, outbox, publish, statuses



def test_send_award_exit(runtime, engine):
    publish(runtime, flow_doc("smoke", [
        {"id": "mail", "kind": "send", "channel": "test", "message": {"text": "Hi {{ contact.external_id }}"}, "next": "gift"},
        {"id": "gift", "kind": "award", "mechanic": "noop", "config": {"label": "x"}, "next": "end"},
        {"id": "end", "kind": "exit"},
    ]))
    ids = add_contacts(runtime, 30)
    with transaction(runtime.sessions) as s:
        assert enroll(s, runtime, "smoke", ids).enrolled == 30
    engine.drain()
    assert statuses(runtime) == {"exited": 30}
    sent = outbox(runtime, status="sent")
    assert len(sent) == 30
    texts = sorted(m.content["text"] for m in test_channel.SENT if m.key in {o.key for o in sent})
    assert texts == sorted(f"Hi c{i}" for i in range(30))
