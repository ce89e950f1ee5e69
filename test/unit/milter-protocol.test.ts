// The server side of the milter protocol: packets cut out of a byte stream however it arrives,
// macros and strings read, and the option negotiation answered within what the MTA offered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MilterReader, milterMacros, milterPacket, negotiationReply, nulStrings, replyCode, SKIP } from '../../src/protocol/milter.ts';

test('packets are cut out of a stream split anywhere; an absurd length is an error', () => {
  const stream = Buffer.concat([milterPacket('M', Buffer.from('<alice@example.com>\0SIZE=10\0')), milterPacket('L', Buffer.from('From\0Alice <alice@example.com>\0')), milterPacket('N')]);
  for (const cut of [1, 3, 4, 5, 17, stream.length - 1]) {
    const reader = new MilterReader();
    const packets = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
    assert.deepEqual(packets.map((p) => p.command), ['M', 'L', 'N'], `cut at ${cut}`);
    assert.deepEqual(nulStrings(packets[1]!.data), ['From', 'Alice <alice@example.com>']);
  }
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(64 * 1024 * 1024);
  assert.throws(() => new MilterReader().push(huge));
});

test('macros, the negotiation answer and a reply code', () => {
  const { stage, values } = milterMacros(Buffer.from('M{auth_authen}\0alice@example.com\0{mail_addr}\0alice@example.com\0'));
  assert.equal(stage, 'M');
  assert.equal(values.get('auth_authen'), 'alice@example.com');
  const offer = Buffer.alloc(12);
  offer.writeUInt32BE(6, 0);
  offer.writeUInt32BE(0x1ff, 4);
  offer.writeUInt32BE(SKIP.connect | SKIP.body, 8);
  const reply = negotiationReply(offer, SKIP.connect | SKIP.helo | SKIP.body);
  assert.equal(reply.subarray(4, 5).toString(), 'O');
  assert.equal(reply.readUInt32BE(5), 6);
  assert.equal(reply.readUInt32BE(9), 0, 'no actions: the message is never changed');
  assert.equal(reply.readUInt32BE(13), SKIP.connect | SKIP.body, 'only steps the MTA offered to skip');
  const refusal = replyCode('550 5.7.1 no\r\nsmuggled');
  assert.equal(refusal.subarray(4, 5).toString(), 'y');
  assert.equal(refusal.subarray(5).toString(), '550 5.7.1 no  smuggled\0');
});
