// What OpenSSL itself keeps per idle server-side TLS session: the floor under the proxy's memory
// per idle TLS session (docs/BENCHMARKS.md, "TLS"). Runs N TLS handshakes in memory (memory BIOs,
// the proxy's context settings: TLS 1.2-1.3, SSL_MODE_RELEASE_BUFFERS, no session cache, tickets),
// exchanges one record each way, frees the client, swaps the server's BIOs for null BIOs (the proxy
// keeps no BIO buffers either) and keeps the server SSL; prints malloc's in-use bytes per kept SSL.
//
//   cc -O2 -o /tmp/openssl-idle-session loadgen/bench/openssl-idle-session.c -lssl -lcrypto
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x -keyout /tmp/k.pem -out /tmp/c.pem
//   /tmp/openssl-idle-session /tmp/c.pem /tmp/k.pem 2000 TICKETS SWITCH_CTX FREE_BUFFERS TLS12
//
// TICKETS: SSL_CTX_set_num_tickets; SWITCH_CTX 1: SSL_set_SSL_CTX to a second context before the
// handshake (as the proxy does when the certificate is chosen); FREE_BUFFERS 1: SSL_free_buffers
// once idle; TLS12 1: the client offers TLS 1.2 only.
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

static SSL_CTX* server_ctx(const char* cert, const char* key, int tickets) {
    SSL_CTX* c = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, (size_t)tickets);
    SSL_CTX_set_session_id_context(c, (const unsigned char*)"x", 1);
    SSL_CTX_set1_groups_list(c, "X25519:P-256:P-384");
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1 || SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    return c;
}

static void pump(BIO* from, BIO* to) {
    char b[65536];
    int n;
    while ((n = BIO_read(from, b, sizeof b)) > 0) BIO_write(to, b, n);
}

int main(int argc, char** argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s CERT KEY N TICKETS SWITCH_CTX FREE_BUFFERS TLS12\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]), tickets = atoi(argv[4]), sw = atoi(argv[5]), fb = atoi(argv[6]), t12 = atoi(argv[7]);
    SSL_CTX* s1 = server_ctx(argv[1], argv[2], tickets);
    SSL_CTX* s2 = server_ctx(argv[1], argv[2], tickets);
    SSL_CTX* cc = SSL_CTX_new(TLS_client_method());
    if (t12) SSL_CTX_set_max_proto_version(cc, TLS1_2_VERSION);
    SSL** keep = calloc((size_t)n, sizeof *keep);
    for (int round = 0; round < 2; ++round) {  // round 0 warms up (lazy tables), round 1 measures
        int m = round == 0 ? 50 : n;
        struct mallinfo2 before = mallinfo2();
        for (int i = 0; i < m; ++i) {
            SSL* s = SSL_new(s1);
            SSL* c = SSL_new(cc);
            BIO *sr = BIO_new(BIO_s_mem()), *sw_ = BIO_new(BIO_s_mem());
            BIO *cr = BIO_new(BIO_s_mem()), *cw = BIO_new(BIO_s_mem());
            SSL_set_bio(s, sr, sw_);
            SSL_set_bio(c, cr, cw);
            if (sw) SSL_set_SSL_CTX(s, s2);
            SSL_set_accept_state(s);
            SSL_set_connect_state(c);
            SSL_set_tlsext_host_name(c, "x");
            for (int k = 0; k < 10; ++k) {
                SSL_do_handshake(c);
                pump(cw, sr);
                SSL_do_handshake(s);
                pump(sw_, cr);
            }
            if (!SSL_is_init_finished(s)) {
                fprintf(stderr, "handshake did not complete\n");
                ERR_print_errors_fp(stderr);
                return 1;
            }
            char buf[100];
            SSL_write(c, "<stream>", 8);
            pump(cw, sr);
            SSL_read(s, buf, sizeof buf);
            SSL_write(s, "<ok/>", 5);
            pump(sw_, cr);
            SSL_read(c, buf, sizeof buf);
            SSL_free(c);
            SSL_set_bio(s, BIO_new(BIO_s_null()), BIO_new(BIO_s_null()));
            if (fb) SSL_free_buffers(s);
            if (round == 0)
                SSL_free(s);
            else
                keep[i] = s;
        }
        struct mallinfo2 after = mallinfo2();
        if (round == 1)
            printf("%s tickets=%d switch_ctx=%d free_buffers=%d: %.0f bytes per idle server SSL (%s)\n",
                   OpenSSL_version(OPENSSL_VERSION), tickets, sw, fb,
                   (double)(after.uordblks - before.uordblks) / n, SSL_get_version(keep[0]));
    }
    return 0;
}
