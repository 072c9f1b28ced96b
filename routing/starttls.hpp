// The proxy's side of XMPP STARTTLS (RFC 6120 section 5) on a terminating listener: after the
// client's first stream header, the proxy answers with its own header and features offering
// <starttls/> (required), then waits for the client's <starttls/> and answers <proceed/>.
// Pure and bounded: no sockets, no TLS library; the session drives it with the bytes it reads.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "stream_condition.hpp"

namespace xs::routing {

inline constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";

// The proxy's stream header and features, sent in answer to the client's first header.
std::string starttls_offer(std::string_view from_domain, std::string_view content_ns,
                           std::string_view stream_id);
// <proceed/>: after it, the next bytes on the wire are the client's TLS ClientHello.
std::string_view starttls_proceed();

enum class StartTlsStatus {
    NeedMore,  // nothing complete yet
    Proceed,   // the client asked for TLS: send starttls_proceed(), then start the handshake
    Reject,    // anything else: refuse with condition() (TLS is required on this listener)
};

class StartTlsReader {
public:
    // Bytes after the client's first stream header. The client must not send anything past
    // its <starttls/> before <proceed/> (RFC 6120 5.4.3.3): such bytes are rejected too, except
    // whitespace (allowed between top-level elements; go-xmpp sends a newline after <starttls/>).
    StartTlsStatus feed(std::string_view bytes);
    // After <proceed/> was sent: the part of `bytes` that belongs to TLS. Whitespace the client
    // wrote after its <starttls/> may arrive in a later read, before the ClientHello (a TLS
    // record never starts with whitespace): it is dropped until the first other byte.
    std::string_view tls_bytes(std::string_view bytes);
    StartTlsStatus status() const { return status_; }
    routing::StreamCondition condition() const { return condition_; }
    const std::string& detail() const { return detail_; }

    static constexpr std::size_t kMaxBytes = 1024;

private:
    StartTlsStatus reject(StreamCondition c, std::string why);
    StartTlsStatus parse();
    void after_whitespace(std::string_view bytes);

    std::string buf_;
    StartTlsStatus status_ = StartTlsStatus::NeedMore;
    StreamCondition condition_ = StreamCondition::PolicyViolation;
    std::string detail_;
    std::size_t trailing_ = 0;     // whitespace seen after <starttls/>
    bool hello_started_ = false;   // tls_bytes(): the first TLS byte has been seen
};

}  // namespace xs::routing
