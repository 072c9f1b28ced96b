// One TCP connection of a Client on the shared libuv loop: connect (from a chosen local
// address), read, write (uv_try_write, the rest queued with uv_write; bytes written before the
// connection is up wait until it is), close. A Link deletes itself once its handle is closed,
// after telling its owner (gone()); it reports nothing else after close().
#pragma once

#include <uv.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace xs::loadgen {

class Link {
public:
    struct Owner {
        virtual ~Owner() = default;
        virtual void link_connected(Link& l) = 0;
        virtual void link_read(Link& l, const char* data, std::size_t n) = 0;
        // The peer closed the connection (error 0) or a read failed (a UV error, e.g. a reset).
        virtual void link_eof(Link& l, int error) = 0;
        // kind: "connect:<UV error>" or "closed:<UV error>" (a write failed)
        virtual void link_failed(Link& l, const std::string& kind, const std::string& detail) = 0;
        virtual void link_gone(Link& l) = 0;  // the handle is closed; the Link is deleted next
        virtual uv_buf_t link_buffer() = 0;   // where reads land (shared by every link)
    };

    Link(uv_loop_t* loop, Owner& owner, std::size_t id);
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    // Starts connecting. On failure (returns false) `kind`/`detail` say why; close() the link.
    bool connect(const sockaddr* server, const sockaddr* source, std::string& kind, std::string& detail);
    void write(std::string_view data);
    void close();

    std::size_t id() const { return id_; }
    bool connected() const { return connected_; }

private:
    struct WriteReq;
    ~Link() = default;
    static void on_connect(uv_connect_t* req, int status);
    static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
    static void on_write(uv_write_t* req, int status);
    static void on_close(uv_handle_t* h);
    void write_now(std::string_view data);

    Owner& owner_;
    std::size_t id_;
    uv_tcp_t tcp_{};
    uv_connect_t connect_req_{};
    bool connected_ = false;
    bool closing_ = false;
    std::string pending_;  // written before the connection was up
};

}  // namespace xs::loadgen
