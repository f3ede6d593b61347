/* znet — ZeroMQ edges that cross hosts (znet.h). */
#include "stream/znet.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "core/util.h"

kt_net_opts kt_net;

#define Z85_KEY_LEN  40        /* a 32-byte key in Z85 text */
#define KEY_FILE_MAX (1 << 20) /* a key list longer than this is not a key list */

static const char *setting(const char *given, const char *env) {
    if (given && *given) return given;
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

double znet_connect_timeout(void) {
    if (kt_net.connect_timeout > 0) return kt_net.connect_timeout;
    const char *e = getenv("KILN_CONNECT_TIMEOUT");
    double t;
    if (e && *e && (!parse_f64(e, &t) || t < 0))
        kiln_die(EX_KILN_USAGE, "KILN_CONNECT_TIMEOUT wants seconds >= 0, not '%s'", e);
    return e && *e ? t : 0;
}

/* ================================ endpoints ============================================== */

/* The HOST:PORT of a tcp endpoint: after "tcp://" and after a connect's "SOURCE;". */
static const char *tcp_address(const char *ep) {
    const char *a = ep + 6, *semi = strrchr(a, ';');
    return semi ? semi + 1 : a;
}

void znet_check_endpoint(const char *url, const char *ep, bool bind) {
    if (strncmp(ep, "tcp://", 6) != 0) return;
    const char *colon = strrchr(tcp_address(ep), ':');
    if (!colon) kiln_die(EX_KILN_USAGE, "%s: a tcp endpoint is tcp://HOST:PORT", url);
    const char *port = colon + 1;
    if (bind && strcmp(port, "*") == 0) return; /* ZeroMQ picks a free port */
    uint64_t p;
    if (!parse_u64(port, &p) || p < 1 || p > 65535)
        kiln_die(EX_KILN_USAGE, "%s: the port must be 1..65535%s, not '%s'", url,
                 bind ? " (or * for any)" : "", port);
}

static bool is_loopback(const char *ep) {
    const char *host = tcp_address(ep);
    size_t n = strcspn(host, ":");
    if (host[0] == '[') n = strcspn(host, "]") + 1; /* [::1]:PORT */
    return strncmp(host, "127.", 4) == 0 || (n == 9 && strncmp(host, "localhost", 9) == 0) ||
           (n == 5 && strncmp(host, "[::1]", 5) == 0) || (n == 2 && strncmp(host, "lo", 2) == 0);
}

void znet_unreachable_why(const char *url, char *why, size_t whysz) {
    const char *ep = url + (url[0] == '>' || url[0] == '@');
    snprintf(why, whysz, "nothing bound at %s answers", ep);
    if (strncmp(ep, "tcp://", 6) != 0) return;
    const char *a = tcp_address(ep), *colon = strrchr(a, ':');
    char host[256];
    size_t n = colon ? (size_t)(colon - a) : strlen(a);
    if (n >= sizeof host) return;
    memcpy(host, a, n);
    host[n] = 0;
    if (host[0] == '[' || strcmp(host, "*") == 0) return; /* an IPv6 literal */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (res) freeaddrinfo(res);
    if (rc != 0) snprintf(why, whysz, "the host %s does not resolve (%s)", host, gai_strerror(rc));
}

/* ================================ key files ============================================== */

/* A file's text, NUL-terminated; NULL with errno set when it cannot be read. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = xmalloc(KEY_FILE_MAX + 1);
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    bool bad = ferror(f) || n > KEY_FILE_MAX;
    fclose(f);
    if (bad) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* The next line with a key (blank lines and '#' comments skipped), trimmed in place; NULL
 * at the end.  *line counts lines. */
static char *next_key_line(char **cursor, int *line) {
    while (**cursor) {
        char *s = *cursor, *nl = strchr(s, '\n');
        *cursor = nl ? nl + 1 : s + strlen(s);
        if (nl) *nl = 0;
        ++*line;
        while (*s == ' ' || *s == '\t') s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
        if (n && s[0] != '#') return s;
    }
    return NULL;
}

/* A Z85 key into z85 (41 bytes) and, when bin is not NULL, its 32 bytes; exits 65 naming
 * the file and line when it is not one. */
static void parse_key(const char *path, int line, const char *text, char *z85, uint8_t *bin) {
    uint8_t tmp[32];
    if (strlen(text) != Z85_KEY_LEN || !zmq_z85_decode(bin ? bin : tmp, text))
        kiln_die(EX_KILN_DATA,
                 "%s:%d: not a CURVE key (40 characters of Z85, as kiln keygen "
                 "writes)",
                 path, line);
    memcpy(z85, text, Z85_KEY_LEN + 1);
}

/* PATH, or PATH + suffix when only that exists: `--curve-key host` finds host.key. */
static char *key_path(const char *path, const char *suffix) {
    if (access(path, F_OK) == 0) return xstrdup(path);
    char *p = xmalloc(strlen(path) + strlen(suffix) + 1);
    strcpy(p, path);
    strcat(p, suffix);
    if (access(p, F_OK) == 0) return p;
    free(p);
    return xstrdup(path);
}

/* The one key in a key file into z85 (41 bytes). */
static void load_key(const char *opt, const char *given, const char *suffix, char *z85) {
    char *path = key_path(given, suffix);
    char *text = slurp(path);
    if (!text) kiln_die(EX_KILN_IO, "%s %s: %s", opt, path, strerror(errno));
    char *cursor = text;
    int line = 0;
    const char *k = next_key_line(&cursor, &line);
    if (!k) kiln_die(EX_KILN_DATA, "%s %s: no key in the file", opt, path);
    parse_key(path, line, k, z85, NULL);
    free(text);
    free(path);
}

/* The public keys a bound end admits. */
typedef struct {
    uint8_t (*bin)[32];
    int n, cap;
    char *source; /* the file or directory, for messages */
} keylist;

static void add_keys_from_file(keylist *kl, const char *path) {
    char *text = slurp(path);
    if (!text) kiln_die(EX_KILN_IO, "--curve-clients %s: %s", path, strerror(errno));
    char *cursor = text, *k, z85[Z85_KEY_LEN + 1];
    int line = 0;
    while ((k = next_key_line(&cursor, &line))) {
        if (kl->n == kl->cap) {
            kl->cap = kl->cap ? 2 * kl->cap : 8;
            kl->bin = xrealloc(kl->bin, xmul((size_t)kl->cap, sizeof *kl->bin));
        }
        parse_key(path, line, k, z85, kl->bin[kl->n++]);
    }
    free(text);
}

/* A file of keys, one a line, or a directory whose *.pub files each hold one. */
static void load_keylist(keylist *kl, const char *source) {
    *kl = (keylist){.source = xstrdup(source)};
    struct stat st;
    if (stat(source, &st) != 0)
        kiln_die(EX_KILN_IO, "--curve-clients %s: %s", source, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        add_keys_from_file(kl, source);
    } else {
        DIR *d = opendir(source);
        if (!d) kiln_die(EX_KILN_IO, "--curve-clients %s: %s", source, strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n < 5 || strcmp(e->d_name + n - 4, ".pub") != 0) continue;
            char *p = xmalloc(strlen(source) + n + 2);
            sprintf(p, "%s/%s", source, e->d_name);
            add_keys_from_file(kl, p);
            free(p);
        }
        closedir(d);
    }
    if (kl->n == 0) kiln_die(EX_KILN_DATA, "--curve-clients %s: no public keys in it", source);
}

/* ================================ the ZAP handler ======================================== */

/* ZeroMQ asks inproc://zeromq.zap.01 (ZeroMQ RFC 27) whether a CURVE client may connect;
 * one handler per context serves every bound socket of the stage. */
static struct {
    bool running;
    pthread_t thread;
    void *sock;
    keylist allowed;
} zap;

static bool allowed(const uint8_t *key) {
    for (int i = 0; i < zap.allowed.n; i++)
        if (memcmp(zap.allowed.bin[i], key, 32) == 0) return true;
    return false;
}

#define ZAP_FRAMES 8

/* One request [version, id, domain, address, identity, mechanism, credentials...] and its
 * reply [version, id, status, text, user id, metadata].  false once the context ends. */
static bool zap_serve_one(void) {
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0;
    for (;;) {
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], zap.sock, 0) < 0) {
            zmq_msg_close(&f[n]);
            for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
            if (errno == EINTR) return true;
            return false; /* ETERM: the context is ending */
        }
        bool more = zmq_msg_more(&f[n]);
        if (n < ZAP_FRAMES - 1)
            n++;
        else
            zmq_msg_close(&f[n]);
        if (!more) break;
    }
    bool ok = n >= 7 && zmq_msg_size(&f[6]) == 32 && allowed(zmq_msg_data(&f[6]));
    if (!ok && n >= 7 && zmq_msg_size(&f[6]) == 32) {
        char z85[Z85_KEY_LEN + 1], addr[64];
        zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32);
        snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]), (char *)zmq_msg_data(&f[3]));
        kiln_warn("refused a client with CURVE public key %s from %s: not in --curve-clients %s",
                  z85, addr, zap.allowed.source);
    }
    const char *status = ok ? "200" : "400", *text = ok ? "OK" : "key not allowed";
    zmq_send(zap.sock, "1.0", 3, ZMQ_SNDMORE);
    if (n >= 2)
        zmq_msg_send(&f[1], zap.sock, ZMQ_SNDMORE);
    else
        zmq_send(zap.sock, "", 0, ZMQ_SNDMORE);
    zmq_send(zap.sock, status, 3, ZMQ_SNDMORE);
    zmq_send(zap.sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(zap.sock, "", 0, ZMQ_SNDMORE);
    zmq_send(zap.sock, "", 0, 0);
    for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
    return true;
}

static void *zap_main(void *arg) {
    (void)arg;
    while (zap_serve_one()) {
    }
    zmq_close(zap.sock);
    return NULL;
}

static void zap_start(void *ctx, const char *clients) {
    if (zap.running) return;
    load_keylist(&zap.allowed, clients);
    zap.sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!zap.sock || zmq_setsockopt(zap.sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(zap.sock, "inproc://zeromq.zap.01") != 0)
        kiln_die(EX_KILN_SOFTWARE, "cannot start the ZAP handler: %s", zmq_strerror(errno));
    /* Signals stay with the main thread: a SIGTERM taken by this one would not wake the
     * main thread's poll, and the stage would not stop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&zap.thread, NULL, zap_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) kiln_die(EX_KILN_SOFTWARE, "cannot start the ZAP handler thread");
    zap.running = true;
}

void znet_context_ended(void) {
    if (!zap.running) return;
    pthread_join(zap.thread, NULL);
    free(zap.allowed.bin);
    free(zap.allowed.source);
    zap.running = false;
}

/* ================================ securing a socket ====================================== */

static void set_key(void *sock, int opt, const char *z85, const char *url) {
    if (zmq_setsockopt(sock, opt, z85, Z85_KEY_LEN + 1) != 0)
        kiln_die(EX_KILN_SOFTWARE, "%s: cannot set a CURVE key: %s (is libzmq built with CURVE?)",
                 url, zmq_strerror(errno));
}

/* A secret key others can read is no secret: say so, as ssh does (but go on). */
static void warn_if_readable(const char *given) {
    char *path = key_path(given, ".key");
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        kiln_warn("--curve-key %s: the secret key is readable by others (chmod 600 it)", path);
    free(path);
}

static void warn_clear_text(const char *url, const char *ep) {
    static bool warned;
    if (warned || is_loopback(ep)) return;
    warned = true;
    kiln_warn("%s: records travel in clear; give --curve-key and the peer's keys (kiln keygen; "
              "README.md, \"Stages on other hosts\")",
              url);
}

void znet_secure(void *ctx, void *sock, const char *url, const char *ep, bool bind) {
    if (strncmp(ep, "tcp://", 6) != 0) return;
    const char *key = setting(kt_net.curve_key, "KILN_CURVE_KEY");
    const char *server = setting(kt_net.curve_server, "KILN_CURVE_SERVER");
    const char *clients = setting(kt_net.curve_clients, "KILN_CURVE_CLIENTS");
    if (!key) {
        if (bind ? clients != NULL : server != NULL)
            kiln_die(EX_KILN_USAGE, "%s: --curve-%s needs --curve-key (this end's secret key)", url,
                     bind ? "clients" : "server");
        warn_clear_text(url, ep);
        return;
    }
    char secret[Z85_KEY_LEN + 1], public[Z85_KEY_LEN + 1];
    load_key("--curve-key", key, ".key", secret);
    warn_if_readable(key);
    if (zmq_curve_public(public, secret) != 0)
        kiln_die(EX_KILN_SOFTWARE, "%s: cannot derive the public key: %s", url,
                 zmq_strerror(errno));
    if (bind) {
        if (!clients)
            kiln_die(EX_KILN_USAGE,
                     "%s: a bound CURVE end needs --curve-clients FILE|DIR (the public keys "
                     "it admits)",
                     url);
        zap_start(ctx, clients);
        int one = 1;
        if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0)
            kiln_die(EX_KILN_SOFTWARE, "%s: cannot make a CURVE server: %s", url,
                     zmq_strerror(errno));
        set_key(sock, ZMQ_CURVE_SECRETKEY, secret, url);
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "kiln", 4);
        return;
    }
    if (!server)
        kiln_die(EX_KILN_USAGE,
                 "%s: a connecting CURVE end needs --curve-server FILE (the bound end's public "
                 "key)",
                 url);
    char server_public[Z85_KEY_LEN + 1];
    load_key("--curve-server", server, ".pub", server_public);
    set_key(sock, ZMQ_CURVE_SERVERKEY, server_public, url);
    set_key(sock, ZMQ_CURVE_PUBLICKEY, public, url);
    set_key(sock, ZMQ_CURVE_SECRETKEY, secret, url);
}

/* ================================ kiln keygen ============================================ */

static int write_key_file(const char *path, const char *z85, mode_t mode, char *err, size_t errsz) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s%s", path, strerror(errno),
                         errno == EEXIST ? " (kiln keygen never overwrites a key)" : "");
    char line[Z85_KEY_LEN + 2];
    snprintf(line, sizeof line, "%s\n", z85);
    bool ok = write(fd, line, Z85_KEY_LEN + 1) == Z85_KEY_LEN + 1;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(path);
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

int znet_write_keypair(const char *name, char *err, size_t errsz) {
    char public[Z85_KEY_LEN + 1], secret[Z85_KEY_LEN + 1];
    if (zmq_curve_keypair(public, secret) != 0)
        return kiln_errf(err, errsz, EX_KILN_SOFTWARE, "cannot make a CURVE key pair: %s",
                         zmq_strerror(errno));
    size_t n = strlen(name) + 5;
    char *key = xmalloc(n), *pub = xmalloc(n);
    snprintf(key, n, "%s.key", name);
    snprintf(pub, n, "%s.pub", name);
    int rc = write_key_file(key, secret, 0600, err, errsz);
    if (rc == 0 && (rc = write_key_file(pub, public, 0644, err, errsz)) != 0) unlink(key);
    memset(secret, 0, sizeof secret);
    free(key);
    free(pub);
    return rc;
}
