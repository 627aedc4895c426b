// GET /healthz: 200 "ok", for the benchmark's start-up timer.
exports.handler = function healthz(context, event, callback) {
  callback(null, 'ok');
};
