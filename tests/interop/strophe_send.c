/* A libstrophe client for the interop tests (tests/integration/test_interop.py): connects to
 * HOST:PORT as JID (plaintext, STARTTLS or Direct TLS), verifies the server's certificate
 * against CAFILE (for the JID's domain), authenticates, sends one chat message to TO, then an
 * XEP-0199 ping to its server, and exits 0 once the pong is back (so the message was processed
 * before it disconnects). Prints "bound=JID secured=0|1" on success.
 *
 *   strophe_send JID PASSWORD HOST PORT plain|starttls|direct CAFILE TO BODY
 *
 * Built by the test fixture: cc strophe_send.c $(pkg-config --cflags --libs libstrophe)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

static int g_rc = 2;
static const char *g_to, *g_body, *g_mode;

static int on_pong(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    (void)ud;
    const char *type = xmpp_stanza_get_type(st);
    if (type && strcmp(type, "result") == 0) {
        int secured = xmpp_conn_is_secured(conn);
        int want = strcmp(g_mode, "plain") != 0;
        printf("bound=%s secured=%d\n", xmpp_conn_get_bound_jid(conn), secured);
        if (secured != want) {
            fprintf(stderr, "strophe_send: secured=%d but mode %s\n", secured, g_mode);
            g_rc = 3;
        } else {
            g_rc = 0;
        }
    } else {
        fprintf(stderr, "strophe_send: ping answered with type %s\n", type ? type : "(none)");
        g_rc = 4;
    }
    xmpp_disconnect(conn);
    return 0;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *stream_error, void *ud)
{
    xmpp_ctx_t *ctx = ud;
    (void)stream_error;
    if (status == XMPP_CONN_CONNECT) {
        xmpp_stanza_t *msg = xmpp_message_new(ctx, "chat", g_to, "interop-msg");
        xmpp_message_set_body(msg, g_body);
        xmpp_send(conn, msg);
        xmpp_stanza_release(msg);

        xmpp_stanza_t *iq = xmpp_iq_new(ctx, "get", "interop-ping");
        char *domain = xmpp_jid_domain(ctx, xmpp_conn_get_jid(conn));
        xmpp_stanza_set_to(iq, domain);
        xmpp_free(ctx, domain);
        xmpp_stanza_t *ping = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(ping, "ping");
        xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
        xmpp_stanza_add_child(iq, ping);
        xmpp_stanza_release(ping);
        xmpp_id_handler_add(conn, on_pong, "interop-ping", NULL);
        xmpp_send(conn, iq);
        xmpp_stanza_release(iq);
    } else {
        if (g_rc == 2)
            fprintf(stderr, "strophe_send: disconnected before the pong (status %d, error %d)\n",
                    (int)status, error);
        xmpp_stop(ctx);
    }
}

static int on_certfail(const xmpp_tlscert_t *cert, const char *const errormsg)
{
    (void)cert;
    fprintf(stderr, "strophe_send: certificate refused: %s\n", errormsg);
    return 0; /* never accept what did not verify */
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s JID PASSWORD HOST PORT plain|starttls|direct CAFILE TO BODY\n",
                argv[0]);
        return 64;
    }
    const char *jid = argv[1], *pw = argv[2], *host = argv[3];
    unsigned short port = (unsigned short)atoi(argv[4]);
    g_mode = argv[5];
    g_to = argv[7];
    g_body = argv[8];

    long flags;
    if (strcmp(g_mode, "plain") == 0)
        flags = XMPP_CONN_FLAG_DISABLE_TLS;
    else if (strcmp(g_mode, "starttls") == 0)
        flags = XMPP_CONN_FLAG_MANDATORY_TLS;
    else if (strcmp(g_mode, "direct") == 0)
        flags = XMPP_CONN_FLAG_LEGACY_SSL;
    else {
        fprintf(stderr, "strophe_send: unknown mode %s\n", g_mode);
        return 64;
    }

    xmpp_initialize();
    xmpp_log_t *log = getenv("STROPHE_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : NULL;
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, log);
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    if (xmpp_conn_set_flags(conn, flags) != 0) {
        fprintf(stderr, "strophe_send: xmpp_conn_set_flags failed\n");
        return 5;
    }
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, pw);
    if (strcmp(g_mode, "plain") != 0) {
        xmpp_conn_set_cafile(conn, argv[6]);
        xmpp_conn_set_certfail_handler(conn, on_certfail);
    }
    if (xmpp_connect_client(conn, host, port, on_conn, ctx) != XMPP_EOK) {
        fprintf(stderr, "strophe_send: xmpp_connect_client failed\n");
        g_rc = 6;
    } else {
        xmpp_run(ctx);
    }
    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return g_rc;
}
