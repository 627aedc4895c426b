// /receive-call as the published watsonx + Flex sample does it: dial the
// assistant's SIP URI built from `Called`, as received, with a referUrl
// for transfers. (Written for this benchmark; same behaviour, including
// taking `Called` unchecked.)
exports.handler = function receiveCall(context, event, callback) {
  const twiml = new Twilio.twiml.VoiceResponse();
  const dial = twiml.dial({ answerOnBridge: true, referUrl: '/refer-handler' });
  dial.sip(`sip:${event.Called}@${context.SIP_URI_HOST};secure=true`);
  callback(null, twiml);
};
