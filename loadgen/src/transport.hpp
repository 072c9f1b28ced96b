// How a client's XML stream travels: plain XMPP (RFC 6120 stream header and stanzas as they
// are), XMPP over WebSocket (RFC 6455 upgrade and frames, RFC 7395 <open/> and <close/>, one
// element per frame) or XMPP over BOSH (XEP-0124/0206: <body/> wrappers POSTed over HTTP/1.1,
// one request in flight per connection, two connections). The Client (SASL, bind, the
// scenarios' stanzas) is the same for all three; it owns the sockets ("links", numbered from
// 0), tells the transport what happened on them, and after every call carries out what the
// transport asks for in out(): close a link's connection, write bytes on a link (connecting it
// first when it has no connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/options.hpp"
#include "core/xml_stream.hpp"

namespace xs::loadgen {

class Transport {
public:
    // Ok: carry on. Established: open the stream now. Error: see error_kind()/error().
    // Ended: the peer ended the session's connection (the Client reports "closed").
    enum class In { Ok, Established, Error, Ended };
    struct LinkOut {
        bool close = false;  // close the link's current connection (before writing `bytes`)
        std::string bytes;   // then write these, on a new connection if it has none
    };

    explicit Transport(std::size_t links) : out_(links) {}
    virtual ~Transport() = default;
    virtual const char* name() const = 0;
    std::size_t links() const { return out_.size(); }

    // `link` got connected (link 0 first, by the Client's start()).
    virtual In connected(std::size_t link) = 0;
    // Bytes read on `link` (after TLS). XML goes into `parser`: a stream header, the stanzas,
    // the stream's end, whatever the framing.
    virtual In input(std::size_t link, const char* data, std::size_t n, xml::StreamParser& parser) = 0;
    // The peer closed `link` (its connection is gone; a later write reconnects it).
    virtual In eof(std::size_t link, xml::StreamParser& parser) = 0;
    // The peer ended the session at the transport level (a WebSocket close frame, a BOSH
    // type='terminate').
    virtual bool peer_closed() const { return false; }

    // The stream's opening (again after STARTTLS/SASL), its close, and one element.
    virtual void open(std::string_view domain) = 0;
    virtual void close() = 0;
    virtual void send(std::string_view element) = 0;

    std::vector<LinkOut>& out() { return out_; }
    const std::string& error_kind() const { return error_kind_; }
    const std::string& error() const { return error_; }
    // HTTP requests sent (BOSH), for the report.
    virtual std::uint64_t requests() const { return 0; }

protected:
    In fail(std::string kind, std::string detail) {
        error_kind_ = std::move(kind);
        error_ = std::move(detail);
        return In::Error;
    }
    std::vector<LinkOut> out_;
    std::string error_kind_, error_;
};

// The stanzas of an RFC 7395 or a BOSH stream reach the parser as if they were in a
// <stream:stream>: a synthetic header first, the server's close as the stream's end.
inline constexpr std::string_view kSyntheticHeader =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

struct TransportSpec {
    TransportKind kind = TransportKind::Tcp;
    std::string http_target;  // request target, e.g. /xmpp-websocket?room=r1, /http-bind?room=r1
    std::string http_host;    // Host header
    int bosh_wait = 60;
    bool tls = false;         // every connection speaks TLS from its first byte (wss://, https://)
};

std::unique_ptr<Transport> make_transport(const TransportSpec& spec);
std::unique_ptr<Transport> make_bosh_transport(const TransportSpec& spec);  // transport_bosh.cpp

}  // namespace xs::loadgen
