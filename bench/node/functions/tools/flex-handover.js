// /tools/flex-handover as Twilio's AI Assistants handover sample does it:
// read X-Session-Id and X-Identity, create a Flex Interaction for the
// conversation (Channel and Routing as JSON form fields), and answer JSON
// for the assistant. The Interactions API is FLEX_API_BASE_URL (the local
// stand-in in the benchmark); Node's built-in fetch keeps connections alive.
// Twilio's hosted runtime passes request headers as event.request.headers;
// twilio-run's local runtime passes none, so the benchmark also sends the
// two values as body fields, read when the headers are absent.
exports.handler = async function flexHandover(context, event, callback) {
  const headers = (event.request && event.request.headers) || {};
  const session = headers['x-session-id'] || event.SessionId || '';
  const identity = headers['x-identity'] || event.Identity || '';
  const match = /conversations__(IS\w{32})\/(CH\w{32})/.exec(session);
  const response = new Twilio.Response();
  response.appendHeader('Content-Type', 'application/json');
  if (!match) {
    response.setStatusCode(400);
    response.setBody({ status: 'error', error: 'invalid_session_id' });
    return callback(null, response);
  }
  const [traitName, ...rest] = identity.split(':');
  const value = rest.join(':');
  const from = traitName === 'whatsapp' ? `whatsapp:${value}` : value;
  let type = 'chat';
  if (traitName === 'whatsapp') type = 'whatsapp';
  else if (value.startsWith('+')) type = 'sms';
  else if (value.startsWith('FX')) type = 'web';
  const form = new URLSearchParams({
    Channel: JSON.stringify({
      type,
      initiated_by: 'customer',
      properties: { media_channel_sid: match[2] },
    }),
    Routing: JSON.stringify({
      properties: {
        workspace_sid: context.FLEX_WORKSPACE_SID,
        workflow_sid: context.FLEX_WORKFLOW_SID,
        task_channel_unique_name: 'chat',
        attributes: { from, customerName: from, customerAddress: from },
      },
    }),
  });
  try {
    const answer = await fetch(`${context.FLEX_API_BASE_URL}/v1/Interactions`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: `Basic ${Buffer.from(`${context.ACCOUNT_SID}:${context.AUTH_TOKEN}`).toString('base64')}`,
      },
      body: form,
    });
    const interaction = await answer.json();
    response.setStatusCode(answer.ok ? 200 : 502);
    response.setBody({
      status: answer.ok ? 'handed_over' : 'error',
      message: 'I have passed our conversation to a member of our team.',
      interaction_sid: interaction.sid,
    });
  } catch (error) {
    response.setStatusCode(502);
    response.setBody({ status: 'error', error: 'upstream_unavailable', message: String(error) });
  }
  return callback(null, response);
};
