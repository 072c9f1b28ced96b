// How a client's XML stream travels over its TCP connection: plain XMPP (RFC 6120 stream
// header and stanzas as they are) or XMPP over WebSocket (RFC 6455 upgrade and frames, RFC 7395
// <open/> and <close/>, one element per frame). The Client (SASL, bind, the scenarios' stanzas)
// is the same for both; it asks the transport what to write and gives it what it reads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/options.hpp"
#include "core/websocket.hpp"
#include "core/xml_stream.hpp"

namespace xs::loadgen {

class Transport {
public:
    enum class In { Ok, Established, Error };
    virtual ~Transport() = default;

    // Once TCP is connected: bytes to write before the stream opens (the HTTP upgrade). Empty:
    // the stream opens at once.
    virtual std::string handshake() = 0;
    // Bytes read from the connection (after TLS). XML goes into `parser` (a stream header, the
    // stanzas, the stream's end, whatever the framing); bytes to answer (pong, close) are
    // appended to `reply`. Established: the handshake just completed, open the stream.
    virtual In input(const char* data, std::size_t n, xml::StreamParser& parser, std::string& reply) = 0;
    // The peer ended the connection at the transport level (a WebSocket close frame).
    virtual bool peer_closed() const { return false; }
    const std::string& error_kind() const { return error_kind_; }
    const std::string& error() const { return error_; }

    // The XML that opens (and restarts) or closes the stream.
    virtual std::string stream_open(std::string_view domain) = 0;
    virtual std::string stream_close() = 0;
    // One XML element (or the stream open/close) as it goes on the wire; the view stays valid
    // until the next call.
    virtual std::string_view wrap(std::string_view xml) = 0;

protected:
    In fail(std::string kind, std::string detail) {
        error_kind_ = std::move(kind);
        error_ = std::move(detail);
        return In::Error;
    }
    std::string error_kind_, error_;
};

struct TransportSpec {
    TransportKind kind = TransportKind::Tcp;
    std::string ws_target;  // request target, e.g. /xmpp-websocket?room=r1
    std::string ws_host;    // Host header
};

std::unique_ptr<Transport> make_transport(const TransportSpec& spec);

}  // namespace xs::loadgen
