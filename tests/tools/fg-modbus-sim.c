/*
 * fg-modbus-sim: a Modbus server that plays an e-bike charging shed for the
 * integration tests, built on libmodbus's server API (modbus_tcp_listen,
 * modbus_receive, modbus_reply with one modbus_mapping_t per unit id).
 *
 *   fg-modbus-sim [--port N]            Modbus TCP on 127.0.0.1 (0 = any
 *                                       free port; the first stdout line is
 *                                       "PORT <n>")
 *   fg-modbus-sim --rtu DEVICE [--baud N] [--unit N]
 *                                       Modbus RTU on a serial device (a
 *                                       socat pty); RTU serves one unit
 *                                       (libmodbus drops frames for others)
 *
 * The test drives it while it runs through commands on stdin, one per line,
 * each answered by one line on stdout ("ok ..." or "error ..."):
 *
 *   unit U                         create unit U (1..247) with empty tables
 *   set U TABLE ADDR TYPE [ORDER] VALUE
 *                                  TABLE coil|discrete|holding|input, ADDR
 *                                  0-based, TYPE u16 i16 u32 i32 f32 bool,
 *                                  ORDER ABCD (default) CDAB BADC DCBA
 *   get U TABLE ADDR               "ok <raw 16-bit value or bit>"
 *   silent U on|off                U stops answering (timeouts)
 *   exception U CODE|off           U answers every request with CODE
 *   stuck U on|off                 U acknowledges coil writes but ignores
 *                                  them (a welded contactor: read-back fails)
 *   stats                          "ok {"U": {"reads": n, "writes": n}, ...}"
 *   reset-stats                    zero the counters
 *   log U                          "ok {"now": ms, "requests": [[ms, function,
 *                                  address, answered], ...]}": U's last 512
 *                                  requests, oldest first, answered or not
 *                                  (a silent unit's too), at CLOCK_MONOTONIC
 *                                  milliseconds: tests measure poll gaps
 *                                  here, outside firegridd
 *   quit
 *
 * Each unit's tables hold 1024 entries; a request beyond them gets
 * libmodbus's own "illegal data address" exception.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <modbus/modbus.h>

#define TABLE_SIZE 1024
#define MAX_UNITS 248
#define MAX_CLIENTS 32

#define LOG_SIZE 512

struct request {
	long long ms;
	int function, address;
	bool answered;
};

struct unit {
	modbus_mapping_t *map;
	bool silent;
	int exception;
	bool stuck;
	unsigned long reads, writes;
	struct request log[LOG_SIZE];     /* a ring: n_log requests so far */
	unsigned long n_log;
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct unit units[MAX_UNITS];

static struct unit *unit_get(int u, bool create)
{
	if (u < 0 || u >= MAX_UNITS)
		return NULL;
	if (!units[u].map && create)
		units[u].map = modbus_mapping_new(TABLE_SIZE, TABLE_SIZE, TABLE_SIZE, TABLE_SIZE);
	return units[u].map ? &units[u] : NULL;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int order_of(const char *s)
{
	static const char *const names[] = { "ABCD", "CDAB", "BADC", "DCBA" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static uint16_t swap16(uint16_t w)
{
	return (uint16_t)(w << 8 | w >> 8);
}

/* A 32-bit value A B C D into two registers in `order`. */
static void split32(uint32_t v, int order, uint16_t *w)
{
	uint16_t hi = (uint16_t)(v >> 16), lo = (uint16_t)v;
	switch (order) {
	case 1: w[0] = lo; w[1] = hi; break;                     /* CDAB */
	case 2: w[0] = swap16(hi); w[1] = swap16(lo); break;     /* BADC */
	case 3: w[0] = swap16(lo); w[1] = swap16(hi); break;     /* DCBA */
	default: w[0] = hi; w[1] = lo; break;                    /* ABCD */
	}
}

static int cmd_set(char **tok, int n)
{
	if (n < 6)
		return -1;
	struct unit *u = unit_get(atoi(tok[1]), true);
	int addr = atoi(tok[3]);
	const char *table = tok[2], *type = tok[4];
	int order = n >= 7 ? order_of(tok[5]) : 0;
	const char *value = tok[n - 1];
	if (!u || addr < 0 || addr >= TABLE_SIZE - 1 || order < 0)
		return -1;
	if (strcmp(table, "coil") == 0 || strcmp(table, "discrete") == 0) {
		uint8_t *bits = table[0] == 'c' ? u->map->tab_bits : u->map->tab_input_bits;
		bits[addr] = atoi(value) != 0;
		return 0;
	}
	uint16_t *regs = strcmp(table, "holding") == 0 ? u->map->tab_registers
		: strcmp(table, "input") == 0 ? u->map->tab_input_registers : NULL;
	if (!regs)
		return -1;
	if (strcmp(type, "u16") == 0 || strcmp(type, "i16") == 0) {
		uint16_t w = (uint16_t)strtol(value, NULL, 0);
		regs[addr] = order >= 2 ? swap16(w) : w;
	} else if (strcmp(type, "u32") == 0 || strcmp(type, "i32") == 0) {
		split32((uint32_t)strtoll(value, NULL, 0), order, &regs[addr]);
	} else if (strcmp(type, "f32") == 0) {
		float f = strtof(value, NULL);
		uint32_t bits;
		memcpy(&bits, &f, sizeof(bits));
		split32(bits, order, &regs[addr]);
	} else {
		return -1;
	}
	return 0;
}

static int cmd_get(char **tok, int n)
{
	struct unit *u = n == 4 ? unit_get(atoi(tok[1]), false) : NULL;
	int addr = n == 4 ? atoi(tok[3]) : -1;
	if (!u || addr < 0 || addr >= TABLE_SIZE)
		return -1;
	const char *t = tok[2];
	int v = t[0] == 'c' ? u->map->tab_bits[addr] : t[0] == 'd' ? u->map->tab_input_bits[addr]
		: t[0] == 'h' ? u->map->tab_registers[addr] : u->map->tab_input_registers[addr];
	reply("ok %d", v);
	return 1;
}

static void cmd_stats(void)
{
	char buf[8192];
	size_t len = 0;
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "ok {");
	bool first = true;
	for (int i = 0; i < MAX_UNITS && len < sizeof(buf) - 100; i++) {
		if (!units[i].map)
			continue;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
		                        "%s\"%d\": {\"reads\": %lu, \"writes\": %lu}", first ? "" : ", ",
		                        i, units[i].reads, units[i].writes);
		first = false;
	}
	snprintf(buf + len, sizeof(buf) - len, "}");
	reply("%s", buf);
}

static void cmd_log(const struct unit *u)
{
	static char buf[LOG_SIZE * 48 + 64];
	size_t len = 0;
	len += (size_t)snprintf(buf, sizeof(buf), "ok {\"now\": %lld, \"requests\": [", mono_ms());
	unsigned long first = u->n_log > LOG_SIZE ? u->n_log - LOG_SIZE : 0;
	for (unsigned long i = first; i < u->n_log && len < sizeof(buf) - 64; i++) {
		const struct request *r = &u->log[i % LOG_SIZE];
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s[%lld, %d, %d, %d]",
		                        i == first ? "" : ", ", r->ms, r->function, r->address,
		                        r->answered);
	}
	snprintf(buf + len, sizeof(buf) - len, "]}");
	reply("%s", buf);
}

/* One control line; returns false on quit. */
static bool control(char *line)
{
	char *tok[8], *save = NULL;
	int n = 0;
	for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 8; t = strtok_r(NULL, " \t\r\n", &save))
		tok[n++] = t;
	if (n == 0)
		return true;
	int r = -1;
	struct unit *u = n >= 2 ? unit_get(atoi(tok[1]), true) : NULL;
	if (strcmp(tok[0], "quit") == 0) {
		reply("ok bye");
		return false;
	} else if (strcmp(tok[0], "unit") == 0 && n == 2) {
		r = u ? 0 : -1;
	} else if (strcmp(tok[0], "set") == 0) {
		r = cmd_set(tok, n);
	} else if (strcmp(tok[0], "get") == 0) {
		r = cmd_get(tok, n);
	} else if (strcmp(tok[0], "silent") == 0 && n == 3 && u) {
		u->silent = strcmp(tok[2], "on") == 0;
		r = 0;
	} else if (strcmp(tok[0], "stuck") == 0 && n == 3 && u) {
		u->stuck = strcmp(tok[2], "on") == 0;
		r = 0;
	} else if (strcmp(tok[0], "exception") == 0 && n == 3 && u) {
		u->exception = strcmp(tok[2], "off") == 0 ? 0 : atoi(tok[2]);
		r = 0;
	} else if (strcmp(tok[0], "stats") == 0) {
		cmd_stats();
		r = 1;
	} else if (strcmp(tok[0], "log") == 0 && n == 2 && u) {
		cmd_log(u);
		r = 1;
	} else if (strcmp(tok[0], "reset-stats") == 0) {
		for (int i = 0; i < MAX_UNITS; i++)
			units[i].reads = units[i].writes = 0;
		r = 0;
	}
	if (r == 0)
		reply("ok");
	else if (r < 0)
		reply("error bad command");
	return true;
}

/*
 * Read what stdin has and run every complete line (not stdio: a buffered
 * second line would wait for the next select).  Returns false on quit or
 * end of input.
 */
static bool control_input(void)
{
	static char buf[4096];
	static size_t len;
	ssize_t n = read(0, buf + len, sizeof(buf) - 1 - len);
	if (n <= 0)
		return n < 0 && errno == EINTR;
	len += (size_t)n;
	buf[len] = '\0';
	char *start = buf, *nl;
	bool running = true;
	while (running && (nl = strchr(start, '\n'))) {
		*nl = '\0';
		running = control(start);
		start = nl + 1;
	}
	len -= (size_t)(start - buf);
	memmove(buf, start, len);
	if (len == sizeof(buf) - 1)
		len = 0;                /* an absurd line: drop it */
	return running;
}

/* Answer one request the way unit `id` is set up to. */
static void serve(modbus_t *ctx, const uint8_t *req, int len, int header)
{
	int id = req[header - 1];
	int fc = req[header];
	struct unit *u = unit_get(id, false);
	if (!u)
		return;
	struct request *logged = &u->log[u->n_log++ % LOG_SIZE];
	*logged = (struct request){
		.ms = mono_ms(), .function = fc,
		.address = len >= header + 3 ? req[header + 1] << 8 | req[header + 2] : -1,
		.answered = !u->silent,
	};
	if (u->silent)
		return;
	bool write = fc == 5 || fc == 6 || fc == 15 || fc == 16;
	if (write)
		u->writes++;
	else
		u->reads++;
	modbus_set_slave(ctx, id);
	if (u->exception) {
		modbus_reply_exception(ctx, req, (unsigned)u->exception);
		return;
	}
	if (u->stuck && (fc == 5 || fc == 15)) {
		/* Acknowledge without changing anything: keep a copy of the coils. */
		uint8_t saved[TABLE_SIZE];
		memcpy(saved, u->map->tab_bits, sizeof(saved));
		modbus_reply(ctx, req, len, u->map);
		memcpy(u->map->tab_bits, saved, sizeof(saved));
		return;
	}
	modbus_reply(ctx, req, len, u->map);
}

static int listen_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

static int run_tcp(int port)
{
	modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
	if (!ctx) {
		fprintf(stderr, "fg-modbus-sim: %s\n", modbus_strerror(errno));
		return 1;
	}
	int server = modbus_tcp_listen(ctx, 8);
	if (server < 0) {
		fprintf(stderr, "fg-modbus-sim: listen on %d: %s\n", port, modbus_strerror(errno));
		modbus_free(ctx);
		return 1;
	}
	reply("PORT %d", listen_port(server));
	int clients[MAX_CLIENTS];
	int n_clients = 0;
	uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
	bool running = true;
	while (running) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(0, &rd);
		FD_SET(server, &rd);
		int maxfd = server;
		for (int i = 0; i < n_clients; i++) {
			FD_SET(clients[i], &rd);
			if (clients[i] > maxfd)
				maxfd = clients[i];
		}
		if (select(maxfd + 1, &rd, NULL, NULL, NULL) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (FD_ISSET(0, &rd))
			running = control_input();   /* false: quit, or the test is gone */
		if (FD_ISSET(server, &rd)) {
			int fd = accept(server, NULL, NULL);
			if (fd >= 0 && n_clients < MAX_CLIENTS)
				clients[n_clients++] = fd;
			else if (fd >= 0)
				close(fd);
		}
		for (int i = 0; i < n_clients; i++) {
			if (!FD_ISSET(clients[i], &rd))
				continue;
			modbus_set_socket(ctx, clients[i]);
			int rc = modbus_receive(ctx, req);
			if (rc > 0) {
				serve(ctx, req, rc, modbus_get_header_length(ctx));
			} else if (rc < 0) {
				close(clients[i]);
				clients[i--] = clients[--n_clients];
			}
		}
	}
	for (int i = 0; i < n_clients; i++)
		close(clients[i]);
	close(server);
	modbus_free(ctx);
	return 0;
}

static int run_rtu(const char *device, int baud, int unit)
{
	modbus_t *ctx = modbus_new_rtu(device, baud, 'N', 8, 1);
	if (!ctx || modbus_set_slave(ctx, unit) < 0 || modbus_connect(ctx) < 0) {
		fprintf(stderr, "fg-modbus-sim: %s: %s\n", device, modbus_strerror(errno));
		if (ctx)
			modbus_free(ctx);
		return 1;
	}
	unit_get(unit, true);
	reply("RTU %s", device);
	uint8_t req[MODBUS_RTU_MAX_ADU_LENGTH];
	bool running = true;
	int fd = modbus_get_socket(ctx);
	while (running) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(0, &rd);
		FD_SET(fd, &rd);
		if (select(fd + 1, &rd, NULL, NULL, NULL) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (FD_ISSET(0, &rd))
			running = control_input();
		if (FD_ISSET(fd, &rd)) {
			int rc = modbus_receive(ctx, req);
			if (rc > 0)
				serve(ctx, req, rc, modbus_get_header_length(ctx));
			else if (rc < 0 && errno != EMBBADCRC)
				modbus_flush(ctx);
		}
	}
	modbus_close(ctx);
	modbus_free(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "rtu", required_argument, NULL, 'r' },
		{ "baud", required_argument, NULL, 'b' },
		{ "unit", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	int port = 0, baud = 9600, unit = 1, opt;
	const char *rtu = NULL;
	while ((opt = getopt_long(argc, argv, "p:r:b:u:", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'r': rtu = optarg; break;
		case 'b': baud = atoi(optarg); break;
		case 'u': unit = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: fg-modbus-sim [--port N] | --rtu DEVICE [--baud N] "
			        "[--unit N]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	int r = rtu ? run_rtu(rtu, baud, unit) : run_tcp(port);
	for (int i = 0; i < MAX_UNITS; i++)
		modbus_mapping_free(units[i].map);
	return r;
}
