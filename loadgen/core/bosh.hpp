// XMPP over BOSH (XEP-0124, XEP-0206), client side, without sockets: the <body/> wrappers a
// client POSTs (session creation, payload, stream restart after SASL, terminate), the reading of
// a response's <body/> (its attributes and the bytes of its children), and Session, the
// request bookkeeping: rid (random start, +1 per request), the sid learnt from the creation
// response, one request held by the server plus at most one carrying stanzas (never more than
// the server's `requests`), and responses taken in rid order whatever order they arrive in.
// tests/loadgen/test_bosh.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xs::loadgen::bosh {

inline constexpr std::string_view kNsHttpBind = "http://jabber.org/protocol/httpbind";
inline constexpr std::string_view kNsXbosh = "urn:xmpp:xbosh";

struct SessionParams {
    std::string to;      // the XMPP domain
    int wait = 60;       // longest time the server may hold a request (seconds)
    int hold = 1;        // requests the server may hold
    std::string lang = "en";
};

// <body rid to xml:lang wait hold ver='1.6' xmpp:version='1.0' xmlns xmlns:xmpp/>
std::string creation_body(std::uint64_t rid, const SessionParams& p);
// <body rid sid xmlns>payload</body> (self-closing when the payload is empty)
std::string payload_body(std::uint64_t rid, std::string_view sid, std::string_view payload);
// <body rid sid to xml:lang xmpp:restart='true' xmlns xmlns:xmpp/>
std::string restart_body(std::uint64_t rid, std::string_view sid, const SessionParams& p);
// <body rid sid type='terminate' xmlns>payload</body>
std::string terminate_body(std::uint64_t rid, std::string_view sid, std::string_view payload);
// POST target HTTP/1.1 with Host, Content-Type text/xml; charset=utf-8 and Content-Length.
std::string post_request(std::string_view target, std::string_view host, std::string_view body);
// A random first rid in [2^20, 2^32): far from 2^53 for the life of a session (XEP-0124 14.1).
std::uint64_t initial_rid();

// A response's root <body/>: its attributes (entity-decoded, names as written) and its
// children's bytes (a view into the text given to read_body).
struct Body {
    std::vector<std::pair<std::string, std::string>> attrs;
    std::string_view inner;
    std::string_view attr(std::string_view name) const;  // empty if absent
    bool has(std::string_view name) const;
};
// nullopt (and *error) if the text is not one <body> element in the httpbind namespace
// (optionally after an XML declaration and whitespace).
std::optional<Body> read_body(std::string_view text, std::string* error);

class Session {
public:
    enum class Status { Ok, Terminated, Error };
    struct Request {
        std::uint64_t rid;
        std::string body;
    };

    // max_requests: the client's own limit on requests in flight (2: one held, one sending).
    Session(SessionParams p, std::uint64_t first_rid, std::size_t max_requests = 2);

    void queue(std::string_view element);  // payload of a coming request
    void restart();                        // after SASL success: an empty xmpp:restart request
    void terminate();                      // the queue goes in a type='terminate' request, the last

    // The request to send now, if any: the creation request (alone until answered), then, while
    // fewer than limit() are out, the restart, the terminate or the queued stanzas, and an
    // empty one when none is out (the server always holds one to answer with).
    std::optional<Request> next();

    // The HTTP body that answered request `rid` (status 200). Answers are taken in rid order:
    // one whose predecessors are still out waits for them. The children of every answer taken
    // are appended to `inner`. Terminated: the server ended the session (condition() says why,
    // empty when it answered our terminate); Error: see error().
    Status on_response(std::uint64_t rid, std::string body, std::string& inner);

    bool created() const { return !sid_.empty(); }
    const std::string& sid() const { return sid_; }
    std::size_t in_flight() const { return out_.size(); }
    std::size_t limit() const;
    int server_requests() const { return requests_; }
    int wait() const { return wait_; }
    int inactivity() const { return inactivity_; }
    std::uint64_t next_rid() const { return rid_; }
    bool terminated() const { return terminated_; }
    bool terminate_sent() const { return term_sent_; }
    const std::string& condition() const { return condition_; }
    const std::string& error() const { return error_; }

private:
    struct Out {
        std::uint64_t rid;
        bool creation;
        bool answered = false;
        std::string body;
    };
    Status take(Out& o, std::string& inner);
    Status fail(std::string e);

    SessionParams p_;
    std::uint64_t rid_;
    std::size_t max_;
    std::string sid_;
    int requests_ = 0, wait_ = 0, inactivity_ = 0;
    std::string queued_;
    bool creation_sent_ = false, restart_ = false, term_ = false, term_sent_ = false;
    bool terminated_ = false, failed_ = false;
    std::string condition_, error_;
    std::deque<Out> out_;  // requests in flight, in rid order
};

}  // namespace xs::loadgen::bosh
