// An HTTP/1.1 response reader for a client that sends one request at a time on a connection
// (BOSH): incremental (bytes in any split give the same result), bounded, no sockets.
//
// Reads the status line and header fields, skips interim 1xx responses, then the body framed
// by Transfer-Encoding: chunked (extensions and trailers skipped), by Content-Length, or, with
// neither, by the end of the connection (finish()). keep_alive() says whether the connection
// may carry the next request: false after "Connection: close", an HTTP/1.0 response without
// "Connection: keep-alive", or a body ended by the close. tests/loadgen/test_http_response.cpp
// splits every response at every byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace xs::loadgen::http {

class ResponseReader {
public:
    enum class Result { NeedMore, Done, Error };
    explicit ResponseReader(std::size_t max_head_bytes = 16 * 1024, std::size_t max_body_bytes = 8 << 20)
        : max_head_(max_head_bytes), max_body_(max_body_bytes) {}

    // Appends bytes. Done: status(), body() and keep_alive() are set; bytes past the response
    // are in extra() (a server must not send any before the next request). Once Done or
    // Error, the same result until reset().
    Result feed(const char* data, std::size_t n);
    Result feed(std::string_view s) { return feed(s.data(), s.size()); }
    // The peer closed the connection: Done if the body ran to the close, else Error (a
    // truncated response; error() says where).
    Result finish();
    // Ready for the next response on the same connection (extra() is dropped).
    void reset();

    int status() const { return status_; }        // 0 until a final status line was read
    std::string& body() { return body_; }
    bool keep_alive() const { return keep_alive_; }
    const std::string& error() const { return error_; }
    const std::string& extra() const { return extra_; }
    std::size_t bytes_seen() const { return seen_; }   // since reset(), the 1xx heads included

private:
    enum class St { Head, Body, ChunkSize, ChunkData, ChunkEnd, Trailer, UntilClose, Done, Error };
    Result fail(std::string msg);
    Result step();
    bool parse_head(std::string_view head);
    bool line(std::string& out);  // a CRLF (or LF) terminated line from buf_, false: need more

    std::size_t max_head_, max_body_;
    St st_ = St::Head;
    std::string buf_;
    std::size_t pos_ = 0;
    std::size_t seen_ = 0;
    std::size_t remaining_ = 0;   // Content-Length or chunk bytes still to read
    int status_ = 0;
    bool keep_alive_ = true;
    std::string body_, error_, extra_;
};

}  // namespace xs::loadgen::http
