// Routing keys of an HTTP request to Jitsi Meet's XMPP endpoints, and the head replayed to the
// chosen backend. Pure: works on a parsed HttpRequestHead.
//
// Endpoints (path compared case-sensitively, no trailing slash, no percent-decoding of the
// fixed part): "/xmpp-websocket" and "/TENANT/xmpp-websocket" -> WebSocket (RFC 7395);
// "/http-bind" and "/TENANT/http-bind" -> Bosh (XEP-0124/0206); anything else -> Other
// ("/conference-request/v1", "/", "/a/b/http-bind", ...). TENANT is one non-empty path segment.
//
// Query parameters (split on '&', then on the first '='; names compared exactly):
//   room    the conference; percent-decoded ('+' stays '+', as encodeURIComponent never
//           produces it for a space), ASCII lower-cased, 1..kMaxRoomBytes bytes, no control
//           characters (C0, DEL) after decoding;
//   prefix  the tenant as nginx's rewrite of /TENANT/http-bind passes it; same rules;
//   vnode   the visitor node; same rules;
//   previd, token and every other parameter are ignored for routing.
// The tenant is the path segment or ?prefix= (both present: they must be equal after decoding
// and lower-casing). hash_key is "tenant/room" with a tenant, "room" without, empty without room.
// An error (nullopt and *why): a parameter repeated, empty, too long, with a bad %-escape or
// a control character, a tenant containing '/', a path tenant that differs from ?prefix=.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "http_head.hpp"

namespace xs::routing {

enum class HttpEndpoint { WebSocket, Bosh, Other };
std::string_view to_string(HttpEndpoint e);

struct HttpRouteKey {
    HttpEndpoint endpoint = HttpEndpoint::Other;
    std::string tenant;    // lower-cased; empty if none
    std::string room;      // decoded, lower-cased; empty if no ?room=
    std::string vnode;     // decoded, lower-cased; empty if no ?vnode=
    std::string hash_key;  // "tenant/room", "room", or empty when there is no room
};

inline constexpr std::size_t kMaxRoomBytes = 1023;  // a JID localpart's limit (RFC 7622)

std::optional<HttpRouteKey> http_route_key(const HttpRequestHead& head, std::string* why = nullptr);

// Percent-decodes `s` (every '%' followed by two hex digits); nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s);

// The head to send the backend: the request line and header lines byte for byte as the client
// sent them (path, query, Host unchanged; skipped leading empty lines are not replayed), except
//   - client_ip is appended to the last X-Forwarded-For line (", " + ip; just ip when its
//     value is empty), or a new field
//     "X-Forwarded-For: ip" is added at the end when there is none;
//   - every X-Forwarded-Proto the client sent is removed and "X-Forwarded-Proto: http|https"
//     is added at the end.
// client_ip comes from the socket (trusted); any byte of it that is not visible ASCII is dropped.
std::string render_backend_head(const HttpRequestHead& head, std::string_view client_ip,
                                bool https);

}  // namespace xs::routing
