// What a session needs from the thread that runs it, and nothing more: the worker implements
// it (app/worker), a unit test implements it with a fake (tests/proxy). session/ never includes
// app/.
#pragma once
#include <uv.h>

#include <cstddef>
#include <string>

namespace xs::metrics {
class WorkerStats;
}
namespace xs::upstream {
class AdmissionQueue;
class IdlePool;
}

namespace xs::session {

class Session;
struct SessionLogEntry;

class SessionHost {
public:
    virtual uv_loop_t* loop() = 0;
    // Reads land here (one buffer per thread, reused by every session).
    virtual char* scratch() = 0;
    virtual std::size_t scratch_size() const = 0;
    // Scratch strings for TLS (decrypted input, records to send), reused by every session.
    virtual std::string& tls_plain() = 0;
    virtual std::string& tls_out() = 0;
    virtual metrics::WorkerStats& stats() = 0;
    virtual void session_log(const SessionLogEntry& e) = 0;
    virtual upstream::AdmissionQueue& admission() = 0;
    // Idle keep-alive backend connections (HTTP), for the next request to the same backend.
    virtual upstream::IdlePool& idle_pool() = 0;
    // Draining: a keep-alive connection closes after its current exchange.
    virtual bool draining() const = 0;
    virtual std::string stream_id() = 0;  // unpredictable id for the proxy's own stream headers
    // The registry of live sessions (drain, cut, connection counts).
    virtual void session_started(Session* s) = 0;
    virtual void session_ended(Session* s) = 0;

protected:
    ~SessionHost() = default;
};

}  // namespace xs::session
