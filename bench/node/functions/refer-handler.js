// /refer-handler as the published watsonx + Flex sample does it: take the
// header part of the Refer-To after '?', drop the first '>', split headers
// on '&' and each on '=', and send the caller back to Studio with the
// session history key appended as found. (Written for this benchmark;
// same behaviour, including its parsing shortcuts.)
exports.handler = function referHandler(context, event, callback) {
  const twiml = new Twilio.twiml.VoiceResponse();
  const headerPart = event.ReferTransferTarget.split('?')[1].replace('>', '');
  const headers = {};
  headerPart.split('&').forEach((header) => {
    const [name, value] = header.split('=');
    headers[name] = value;
  });
  const key = headers['X-Watson-Assistant-Session-History-Key'];
  twiml.redirect(
    { method: 'POST' },
    `${context.STUDIO_WEBHOOK_URL}?FlowEvent=return&SessionHistoryKey=${key}`
  );
  callback(null, twiml);
};
