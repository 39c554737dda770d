// Where this screen connects, from its own address:
//
//   ?join=<a hub's QR link>     the link an owner's screen shows as a QR code
//                               (http(s)://hub/join?token=JOIN_TOKEN): the hub is the
//                               link's origin, the one-time token its `token`
//   ?hub=<url>&token=<jwt>[&session=<id>]   a user's own token, a new or given session
//
// The token goes to the client (which sends it in the subprotocol), never back into a URL.

export function connection(search) {
  const params = new URLSearchParams(search);
  const join = params.get('join');
  if (join) {
    const link = new URL(join);
    const token = link.searchParams.get('token');
    if (!token) return { error: 'the join link has no token' };
    return { hub: link.origin, token, sessionId: null, joined: true };
  }
  const hub = params.get('hub');
  const token = params.get('token');
  if (!hub || !token) {
    return { error: 'open this page with ?join=<a hub\u2019s QR link>, or ?hub=<url>&token=<token>' };
  }
  return { hub, token, sessionId: params.get('session'), joined: false };
}
