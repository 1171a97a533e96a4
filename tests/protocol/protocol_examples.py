"""The examples of PROTOCOL.md, verbatim except that each "…" holds a plausible value.

Entries marked "prose" are not in an example table but follow from the text next
to it (media, encryption, sync without cursors, pushes, errors).
"""

from __future__ import annotations

__all__ = ["CLIENT_EXAMPLES", "SERVER_EXAMPLES"]

_MSG_ID = "7270146451237519360"
_CMID = "uuid-1b4e28ba-2fa1-11d2-883f-0016d3cca427"
_BLOB = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_THUMB = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
_ATTACHMENT = f'{{"blob":"{_BLOB}","name":"a.png","size":1024,"mime":"image/png"}}'
_SIGNED = f"/media/{_BLOB}?expires=1732800300&sig=" + "ab" * 32
_SIGNED_THUMB = f"/media/{_THUMB}?expires=1732800300&sig=" + "cd" * 32
_ATTACHMENT_OUT = (
    f'{{"url":"{_SIGNED}","name":"a.png","size":1024,"mime":"image/png","blob":"{_BLOB}",'
    f'"thumbnail":"{_THUMB}","thumbnail_url":"{_SIGNED_THUMB}"}}'
)
_TEAM = '"chat":"c-team","kind":"group","members":["alice","bob","carol"],"title":"team"'

CLIENT_EXAMPLES: list[str] = [
    # Session
    '{"type":"hello","id":1,"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",'
    '"device":"phone-1"}',
    '{"type":"ping","id":11}',
    # Chats
    '{"type":"chat.create","id":2,"kind":"direct","members":["bob"]}',
    '{"type":"chat.create","id":3,"kind":"group","title":"team","members":["bob","carol"]}',
    '{"type":"chat.members","id":4,"chat":"c-team","add":["dave"],"remove":[]}',
    '{"type":"chats","id":5}',
    # Messages
    f'{{"type":"send","id":6,"chat":"c-team","client_msg_id":"{_CMID}","kind":"text","body":"hi"}}',
    # prose: media carry an attachment; an encrypted body is opaque base64
    f'{{"type":"send","id":12,"chat":"c-team","client_msg_id":"uuid-2","kind":"image",'
    f'"body":"","attachment":{_ATTACHMENT}}}',
    '{"type":"send","id":13,"chat":"c-team","client_msg_id":"uuid-3","kind":"text",'
    '"body":"aGk=","encrypted":true}',
    # History and sync
    '{"type":"history","id":7,"chat":"c-team","before":50,"limit":50}',
    '{"type":"history","id":7,"chat":"c-team","after":7,"limit":50}',
    '{"type":"sync","id":8,"cursors":{"chatA":7,"chatB":0}}',
    '{"type":"sync","id":8}',  # prose: sync without cursors
    # Receipts
    '{"type":"receipt","chat":"c-team","status":"delivered","seq":9}',
    '{"type":"receipt","chat":"c-team","status":"read","seq":9}',
    # Presence and typing
    '{"type":"presence.subscribe","id":9,"users":["bob","carol"]}',
    '{"type":"presence.unsubscribe","id":10,"users":["bob"]}',
    '{"type":"typing","chat":"c-team"}',
    # Push targets (additions)
    '{"type":"push.register","id":14,"kind":"webpush",'
    '"token":"https://fcm.googleapis.com/fcm/send/dX1","keys":{"p256dh":"BNc","auth":"tBH"}}',
    '{"type":"push.register","id":15,"kind":"fcm","token":"cQ3:APA91b"}',
    f'{{"type":"push.register","id":16,"kind":"apns","token":"{"ab" * 32}"}}',
    '{"type":"push.unregister","id":17}',
    # End-to-end encryption keys (additions, docs/encryption.md)
    '{"type":"keys.publish","id":18,"version":1,'
    '"public_key":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}',
    '{"type":"keys.fetch","id":19,"users":["bob","carol"]}',
    '{"type":"keys.fetch","id":22,"chat":"c-team"}',
    '{"type":"keys.revoke","id":20}',
    '{"type":"keys.revoke","id":21,"device":"old-laptop"}',
]

_MESSAGE = (
    f'{{"type":"message","chat":"c-team","seq":5,"message_id":"{_MSG_ID}","sender":"alice",'
    f'"client_msg_id":"{_CMID}","kind":"text","body":"hi","ts":1732800000000}}'
)

CLIENT_EXAMPLES += [
    # Group roles
    '{"type":"chat.create","id":20,"kind":"group","members":["bob"],"history_visible":false}',
    '{"type":"chat.members","id":21,"chat":"c-team","promote":["bob"],"demote":[]}',
    '{"type":"chat.members","id":22,"chat":"c-team","history_visible":true}',
    '{"type":"chat.members","id":23,"chat":"c-team","remove":["alice"]}',
    # Message lifecycle
    '{"type":"edit","id":30,"chat":"c-team","seq":5,"body":"hi all"}',
    '{"type":"delete","id":31,"chat":"c-team","seq":5}',
    '{"type":"react","id":32,"chat":"c-team","seq":5,"emoji":"👍"}',
    '{"type":"unreact","id":33,"chat":"c-team","seq":5,"emoji":"👍"}',
]

SERVER_EXAMPLES: list[str] = [
    # Session
    '{"type":"welcome","id":1,"user":"alice","device":"phone-1","heartbeat_s":30}',
    '{"type":"pong","id":11}',
    # Chats
    '{"type":"chat","id":2,"chat":{"chat":"c-direct","kind":"direct","members":["alice","bob"],'
    '"title":null,"last_seq":0}}',
    f'{{"type":"chat","id":3,"chat":{{{_TEAM},"last_seq":0}}}}',
    # prose: members get a chat push (no id)
    '{"type":"chat","chat":{"chat":"c-team","kind":"group",'
    '"members":["alice","bob","carol","dave"],"title":"team","last_seq":0}}',
    f'{{"type":"chats","id":5,"chats":[{{{_TEAM},"last_seq":15,'
    '"read_seq":12,"delivered_seq":14,"unread":3}]}',
    # Messages
    f'{{"type":"accepted","id":6,"chat":"c-team","client_msg_id":"{_CMID}",'
    f'"message_id":"{_MSG_ID}"}}',
    _MESSAGE,
    # prose: media and encrypted messages
    f'{{"type":"message","chat":"c-team","seq":6,"message_id":"7270146451237519361",'
    f'"sender":"bob","client_msg_id":"uuid-2","kind":"image","body":"","ts":1732800000500,'
    f'"attachment":{_ATTACHMENT_OUT}}}',
    '{"type":"message","chat":"c-team","seq":7,"message_id":"7270146451237519362",'
    '"sender":"bob","client_msg_id":"uuid-3","kind":"text","body":"aGk=","ts":1732800000600,'
    '"encrypted":true}',
    # History and sync
    f'{{"type":"history","id":7,"chat":"c-team","messages":[{_MESSAGE}],"has_more":true}}',
    '{"type":"synced","id":8,"chats":[{"chat":"chatA","last_seq":9,"read_seq":7,'
    '"delivered_seq":7,"unread":2,"truncated":false}]}',
    # Receipts
    '{"type":"receipt","chat":"c-team","user":"bob","status":"delivered","seq":9,'
    '"ts":1732800001000}',
    '{"type":"receipt","chat":"c-team","user":"bob","status":"read","seq":9,"ts":1732800002000}',
    # Presence and typing
    '{"type":"presence","id":9,"states":[{"user":"bob","status":"online",'
    '"last_seen":1732800000000}]}',
    '{"type":"presence","states":[{"user":"carol","status":"offline","last_seen":1732799000000}]}',
    '{"type":"ok","id":10}',
    '{"type":"typing","chat":"c-team","user":"alice"}',
    # Errors
    '{"type":"error","id":6,"code":"not_member","message":"alice is not in c-team"}',
    '{"type":"error","id":6,"code":"rate_limited","message":"slow down","retry_after_ms":1500}',
    '{"type":"error","code":"bad_frame","message":"malformed frame"}',  # prose: no id to echo
    # End-to-end encryption keys (additions)
    '{"type":"keys","id":19,"users":[{"user":"bob","devices":[{"device":"phone",'
    '"version":2,"public_key":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}]},'
    '{"user":"carol","devices":[]}]}',
    '{"type":"keys.changed","user":"bob","device":"phone","version":3,'
    '"public_key":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}',
    '{"type":"keys.changed","user":"bob","device":"old-laptop"}',
]

SERVER_EXAMPLES += [
    # Group roles
    f'{{"type":"chat","id":21,"chat":{{{_TEAM},"last_seq":9,"creator":"alice",'
    '"admins":["alice","bob"],"history_visible":false}}',
    # Message lifecycle
    '{"type":"accepted","id":30,"chat":"c-team","client_msg_id":"edit-7270146451237519370",'
    '"message_id":"7270146451237519370"}',
    '{"type":"message","chat":"c-team","seq":10,"message_id":"7270146451237519370",'
    '"sender":"alice","client_msg_id":"edit-7270146451237519370","kind":"edit",'
    '"body":"hi all","ts":1732800009000,"target":5}',
    '{"type":"message","chat":"c-team","seq":11,"message_id":"7270146451237519371",'
    '"sender":"bob","client_msg_id":"react-7270146451237519371","kind":"react","body":"👍",'
    '"ts":1732800009500,"target":5}',
    f'{{"type":"message","chat":"c-team","seq":5,"message_id":"{_MSG_ID}","sender":"alice",'
    f'"client_msg_id":"{_CMID}","kind":"text","body":"hi all","ts":1732800000000,'
    '"edited_ts":1732800009000,"reactions":[{"emoji":"👍","users":["bob"]}],"changed_seq":11}',
    f'{{"type":"message","chat":"c-team","seq":5,"message_id":"{_MSG_ID}","sender":"alice",'
    f'"client_msg_id":"{_CMID}","kind":"text","body":"","ts":1732800000000,"deleted":true,'
    '"changed_seq":12}',
]
