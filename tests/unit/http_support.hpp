// Helpers for the HTTP reader tests: real requests and every-split feeding.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "routing/http_head.hpp"

namespace xs::test {

// A Chrome-style WebSocket upgrade as Jitsi Meet opens it.
inline const std::string kChromeWs =
    "GET /xmpp-websocket?room=myroom HTTP/1.1\r\n"
    "Host: meet.example.com\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://meet.example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: xmpp\r\n"
    "\r\n";

inline const std::string kStropheBody =
    "<body rid='3427615023' xmlns='http://jabber.org/protocol/httpbind' to='meet.example.com' "
    "xml:lang='en' wait='60' hold='1' content='text/xml; charset=utf-8' ver='1.6' "
    "xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>";

// strophe.js's BOSH session request, head and body.
inline std::string strophe_post(const std::string& target = "/http-bind?room=myroom") {
    return "POST " + target + " HTTP/1.1\r\n"
           "Host: meet.example.com\r\n"
           "Connection: keep-alive\r\n"
           "Content-Length: " + std::to_string(kStropheBody.size()) + "\r\n"
           "Content-Type: text/xml; charset=UTF-8\r\n"
           "Origin: https://meet.example.com\r\n"
           "Accept: */*\r\n"
           "\r\n" + kStropheBody;
}

// Calls run(chunks-fed reader outcome) for: whole, byte by byte, every 2-split, and 3-splits
// on a stride; `outcome` feeds the pieces and renders what the reader decided.
inline void for_each_split(std::string_view in,
                           const std::function<std::string(const std::vector<std::string_view>&)>& outcome,
                           const std::function<void(const std::string&, const std::string&)>& same) {
    const std::string whole = outcome({in});
    std::vector<std::string_view> ones;
    for (std::size_t i = 0; i < in.size(); ++i) ones.push_back(in.substr(i, 1));
    same(whole, outcome(ones));
    for (std::size_t i = 0; i <= in.size(); ++i)
        same(whole, outcome({in.substr(0, i), in.substr(i)}));
    const std::size_t stride = in.size() / 40 + 1;
    for (std::size_t i = 0; i <= in.size(); i += stride)
        for (std::size_t j = i; j <= in.size(); j += stride)
            same(whole, outcome({in.substr(0, i), in.substr(i, j - i), in.substr(j)}));
}

// The request reader's whole outcome as text (status, reject, head fields).
std::string describe_request(const routing::HttpRequestReader& r);
std::string request_outcome(const std::vector<std::string_view>& pieces,
                            std::size_t max_head = 16384, std::size_t max_target = 8192);

}  // namespace xs::test
