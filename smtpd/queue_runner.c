/*
 * queue_runner.c - the queue runner process: start-up, the scheduler
 * (which entries are due, inotify on queue_dir for new entries, deletions
 * and flush requests), and the delivery threads it feeds.
 *
 * Only one runner works on a queue_dir at a time (an flock on .lock): a
 * runner left over from a killed smtpd finishes or dies before a new one
 * starts, so no two processes ever send the same entry.  The scheduler
 * only keeps (id, next try, busy) per entry; the envelope on disk is the
 * truth and each attempt re-reads it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "queue_runner.h"
#include "queue_dmarc.h"
#include "smtpc.h"
#include "../common/log.h"
#include "../common/server.h"
#include "../common/srs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define RESCAN_INTERVAL 300	/* seconds: in case an inotify event was lost */
#define STOP_GRACE 3		/* seconds in-flight deliveries get at stop */

struct qent {
	char id[QUEUE_ID_MAX];
	time_t next_try;
	int busy;
	int seen;		/* mark for rescans */
};

struct job {
	char id[QUEUE_ID_MAX];
	enum attempt_result result;
	time_t next_try;
	struct job *next;
};

struct sched {
	struct runner r;
	struct qent *e;
	size_t n, cap;
	unsigned nbusy, nthreads;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo, *todo_tail, *done;
	int wake[2];		/* threads -> scheduler: a job finished */
	int ino, sfd;
	time_t last_scan;
};

static struct qent *
find(struct sched *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->e[i].id, id) == 0)
			return &s->e[i];
	return NULL;
}

/*
 * Keeps the order: entries are learnt oldest first (ids begin with the
 * time) and dispatch() takes them in array order, so under a steady
 * stream the oldest mail goes first instead of the newest.
 */
static void
forget(struct sched *s, struct qent *q)
{
	size_t i = (size_t)(q - s->e);

	memmove(q, q + 1, (s->n - i - 1) * sizeof(*q));
	s->n--;
}

/* Add or refresh id from its envelope (a new entry, or after a rescan). */
static void
learn(struct sched *s, const char *id)
{
	struct queue_env env;
	struct qent *q;

	if ((q = find(s, id)) != NULL) {
		q->seen = 1;
		return;
	}
	if (queue_env_read(s->r.cfg.queue_dir, id, &env) < 0) {
		if (errno != ENOENT)
			log_error("queue: %s/%s.env unreadable: %s",
			    s->r.cfg.queue_dir, id, strerror(errno));
		return;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		struct qent *ne = reallocarray(s->e, ncap, sizeof(*ne));

		if (ne == NULL) {
			queue_env_free(&env);
			log_error("queue: out of memory, %s waits for a rescan",
			    id);
			return;
		}
		s->e = ne;
		s->cap = ncap;
	}
	q = &s->e[s->n++];
	memset(q, 0, sizeof(*q));
	strlcpy_checked(q->id, id, sizeof(q->id));
	q->next_try = env.next_try;
	q->seen = 1;
	queue_env_free(&env);
}

static void
rescan(struct sched *s)
{
	char **ids;
	size_t n, i;

	if (queue_scan(s->r.cfg.queue_dir, &ids, &n) < 0) {
		log_error("queue: cannot scan %s: %s", s->r.cfg.queue_dir,
		    strerror(errno));
		return;
	}
	for (i = 0; i < s->n; i++)
		s->e[i].seen = s->e[i].busy;
	for (i = 0; i < n; i++)
		learn(s, ids[i]);
	queue_scan_free(ids, n);
	for (i = 0; i < s->n; )
		if (!s->e[i].seen)
			forget(s, &s->e[i]);
		else
			i++;
	s->last_scan = time(NULL);
}

static void
flush_all(struct sched *s)
{
	char path[PATH_MAX];
	size_t i;

	log_info("queue: flush requested, retrying %zu entries now", s->n);
	for (i = 0; i < s->n; i++)
		s->e[i].next_try = 0;
	if (snprintf_checked(path, sizeof(path), "%s/%s", s->r.cfg.queue_dir,
	    QUEUE_FLUSH_NAME) == 0)
		(void)unlink(path);
}

/* "ID.env" -> ID; 0 when name is not an entry's envelope. */
static int
env_name_id(const char *name, char *id, size_t idsz)
{
	size_t len = strlen(name);

	if (name[0] == '.' || len <= 4 || len - 4 >= idsz ||
	    strcmp(name + len - 4, ".env") != 0)
		return 0;
	memcpy(id, name, len - 4);
	id[len - 4] = '\0';
	return queue_id_valid(id);
}

static void
read_inotify(struct sched *s)
{
	char ev[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ie;
	char id[QUEUE_ID_MAX];
	struct qent *q;
	ssize_t n;
	char *p;

	while ((n = read(s->ino, ev, sizeof(ev))) > 0) {
		for (p = ev; p < ev + n; p += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)p;
			if (ie->mask & IN_Q_OVERFLOW) {
				rescan(s);
				continue;
			}
			if (ie->len == 0)
				continue;
			if (strcmp(ie->name, QUEUE_FLUSH_NAME) == 0) {
				if (ie->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
					flush_all(s);
				continue;
			}
			if (!env_name_id(ie->name, id, sizeof(id)))
				continue;
			q = find(s, id);
			if (ie->mask & (IN_DELETE | IN_MOVED_FROM)) {
				if (q != NULL && !q->busy)
					forget(s, q);
			} else if (q == NULL) {
				learn(s, id);	/* a new entry */
			}
		}
	}
}

/* ---- delivery threads ---- */

static void *
worker_main(void *arg)
{
	struct runner_worker w = { .r = arg };
	struct sched *s = arg;	/* struct runner is the first member */
	char err[1024];
	struct job *j;

	/*
	 * The database is opened at the first job, not here: twenty
	 * threads opening one WAL database at the same instant can make
	 * SQLite give up with SQLITE_PROTOCOL.
	 */
	w.seed = (unsigned)(uintptr_t)&w ^ (unsigned)time(NULL);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (s->todo == NULL && !s->r.stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->todo == NULL) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		j = s->todo;
		s->todo = j->next;
		if (s->todo == NULL)
			s->todo_tail = NULL;
		pthread_mutex_unlock(&s->mu);

		if (w.db == NULL && db_open(s->r.cfg.database, 0, &w.db, err,
		    sizeof(err)) < 0) {
			log_error("queue: id=%s waits: %s", j->id, err);
			j->result = ATTEMPT_RETRY;
			j->next_try = time(NULL) + 60;
		} else {
			j->result = queue_attempt(&w, j->id, &j->next_try);
		}

		pthread_mutex_lock(&s->mu);
		j->next = s->done;
		s->done = j;
		pthread_mutex_unlock(&s->mu);
		(void)!write(s->wake[1], "x", 1);
	}
	db_close(&w.db);
	return NULL;
}

static void
collect_done(struct sched *s)
{
	struct job *j, *next;
	struct qent *q;
	char drain[64];

	while (read(s->wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&s->mu);
	j = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		s->nbusy--;
		if ((q = find(s, j->id)) != NULL) {
			q->busy = 0;
			if (j->result == ATTEMPT_RETRY)
				q->next_try = j->next_try;
			else
				forget(s, q);
		}
		free(j);
	}
}

static void
dispatch(struct sched *s, time_t now)
{
	struct job *j;
	size_t i;

	for (i = 0; i < s->n && s->nbusy < s->nthreads; i++) {
		struct qent *q = &s->e[i];

		if (q->busy || q->next_try > now)
			continue;
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return;
		strlcpy_checked(j->id, q->id, sizeof(j->id));
		q->busy = 1;
		s->nbusy++;
		pthread_mutex_lock(&s->mu);
		if (s->todo_tail != NULL)
			s->todo_tail->next = j;
		else
			s->todo = j;
		s->todo_tail = j;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
}

/* Milliseconds until the next entry is due (-1: nothing scheduled). */
static int
poll_timeout(struct sched *s, time_t now)
{
	time_t next = s->last_scan + RESCAN_INTERVAL;
	size_t i;

	if (s->nbusy < s->nthreads)
		for (i = 0; i < s->n; i++)
			if (!s->e[i].busy && s->e[i].next_try < next)
				next = s->e[i].next_try;
	if (next <= now)
		return 0;
	if (next - now > 3600)
		return 3600 * 1000;
	return (int)(next - now) * 1000;
}

static void
run(struct sched *s)
{
	struct pollfd pfd[3];
	struct signalfd_siginfo si;
	char flush[PATH_MAX];
	time_t now;

	rescan(s);
	/* A flush asked for while no runner was watching. */
	if (snprintf_checked(flush, sizeof(flush), "%s/%s", s->r.cfg.queue_dir,
	    QUEUE_FLUSH_NAME) == 0 && access(flush, F_OK) == 0)
		flush_all(s);
	while (!s->r.stopping) {
		now = time(NULL);
		if (now - s->last_scan >= RESCAN_INTERVAL)
			rescan(s);
		dispatch(s, now);
		queue_dmarc_tick(&s->r.cfg, now);	/* daily reports, purge */
		pfd[0].fd = s->ino;
		pfd[1].fd = s->wake[0];
		pfd[2].fd = s->sfd;
		pfd[0].events = pfd[1].events = pfd[2].events = POLLIN;
		if (poll(pfd, 3, poll_timeout(s, time(NULL))) < 0 &&
		    errno != EINTR) {
			log_error("queue: poll: %s", strerror(errno));
			sleep(1);
			continue;
		}
		if (pfd[2].revents & POLLIN &&
		    read(s->sfd, &si, sizeof(si)) == sizeof(si))
			s->r.stopping = 1;
		if (pfd[1].revents & POLLIN)
			collect_done(s);
		if (pfd[0].revents & POLLIN)
			read_inotify(s);
	}
}

/* Let the threads finish what they send; after STOP_GRACE, just go. */
static void
stop_threads(struct sched *s)
{
	time_t until = time(NULL) + STOP_GRACE;
	struct pollfd p = { .fd = s->wake[0], .events = POLLIN };
	unsigned i;

	pthread_mutex_lock(&s->mu);
	while (s->todo != NULL) {	/* not started: nothing to wait for */
		struct job *j = s->todo;

		s->todo = j->next;
		free(j);
		s->nbusy--;
	}
	s->todo_tail = NULL;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	while (s->nbusy > 0 && time(NULL) < until) {
		(void)poll(&p, 1, 200);
		collect_done(s);
	}
	if (s->nbusy > 0) {
		log_warn("queue: stopping with %u deliveries in flight (their "
		    "unconfirmed recipients stay queued)", s->nbusy);
		_exit(0);
	}
	for (i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
}

/* ---- start-up ---- */

static int
take_lock(struct sched *s)
{
	char path[PATH_MAX];
	struct signalfd_siginfo si;
	int fd, waited = 0;

	if (snprintf_checked(path, sizeof(path), "%s/.lock",
	    s->r.cfg.queue_dir) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_error("queue: %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			log_error("queue: lock %s: %s", path, strerror(errno));
			return -1;
		}
		if (!waited++)
			log_info("queue: waiting for the previous queue runner "
			    "to finish");
		if (read(s->sfd, &si, sizeof(si)) == sizeof(si))
			return -1;
		usleep(100 * 1000);
	}
	return fd;		/* held until the process exits */
}

static int
read_relay_password(struct runner *r)
{
	char *nl;
	FILE *f;

	if (r->cfg.relayhost_password[0] != '\0')
		return strlcpy_checked(r->relay_pass,
		    r->cfg.relayhost_password, sizeof(r->relay_pass));
	if (r->cfg.relayhost_password_file[0] == '\0')
		return 0;
	if ((f = fopen(r->cfg.relayhost_password_file, "re")) == NULL) {
		log_error("queue: relayhost_password_file %s: %s",
		    r->cfg.relayhost_password_file, strerror(errno));
		return -1;
	}
	if (fgets(r->relay_pass, sizeof(r->relay_pass), f) == NULL)
		r->relay_pass[0] = '\0';
	fclose(f);
	if ((nl = strpbrk(r->relay_pass, "\r\n")) != NULL)
		*nl = '\0';
	if (r->relay_pass[0] == '\0') {
		log_error("queue: relayhost_password_file %s is empty",
		    r->cfg.relayhost_password_file);
		return -1;
	}
	return 0;
}

static int
parse_relayhost(struct runner *r)
{
	const char *v = r->cfg.relayhost, *colon;
	size_t hl;
	char *end;
	unsigned long port;

	if (v[0] == '\0')
		return 0;
	if (v[0] == '[') {	/* [host]:port, for IPv6 literals */
		const char *rb = strchr(v, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - v - 1);
		v++;
		colon = rb + 1;
	} else {
		if ((colon = strrchr(v, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - v);
	}
	if (hl == 0 || hl >= sizeof(r->relay_host))
		return -1;
	memcpy(r->relay_host, v, hl);
	r->relay_host[hl] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return -1;
	r->relay_port = (unsigned)port;
	return 0;
}

/*
 * The configuration the daemon loaded, read from CONFIG_FD: the runner
 * runs after the privilege drop and may not be able to read buzon.conf
 * (which can hold relayhost_password) itself.  struct config is plain
 * data and this is the same binary, so its bytes are the whole message.
 */
#define CONFIG_FD 3

static int
read_config(struct config *cfg)
{
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(*cfg)) {
		n = read(CONFIG_FD, (char *)cfg + got, sizeof(*cfg) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	close(CONFIG_FD);
	return 0;
}

void
queue_runner_main(int debug)
{
	static struct sched s;
	char err[512];
	sigset_t set;
	unsigned i;

	log_init("smtpd", debug);
	/* exec of /proc/self/exe names the process "exe"; ps and pgrep
	 * should see smtpd */
	(void)prctl(PR_SET_NAME, "smtpd");
	if (read_config(&s.r.cfg) < 0)
		log_fatal("queue: no configuration from smtpd");
	/* an ignored signal never reaches a signalfd: default, then blocked */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);	/* a terminal's hang-up is not a stop */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* threads inherit it */
	s.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.sfd < 0)
		log_fatal("queue: signalfd: %s", strerror(errno));
	if (take_lock(&s) < 0)
		_exit(0);
	if (parse_relayhost(&s.r) < 0)
		log_fatal("queue: relayhost = %s: expected host:port",
		    s.r.cfg.relayhost);
	if (read_relay_password(&s.r) < 0)
		_exit(1);
	if (srs_secret_load(s.r.cfg.state_dir, 1, s.r.srs_key, err,
	    sizeof(err)) < 0)
		log_fatal("queue: %s", err);
	if ((s.r.ssl = smtpc_tls_ctx(err, sizeof(err))) == NULL)
		log_fatal("queue: %s", err);
	s.ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s.ino < 0 || inotify_add_watch(s.ino, s.r.cfg.queue_dir,
	    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0)
		log_fatal("queue: inotify on %s: %s", s.r.cfg.queue_dir,
		    strerror(errno));
	if (pipe2(s.wake, O_NONBLOCK | O_CLOEXEC) < 0)
		log_fatal("queue: pipe: %s", strerror(errno));
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	s.nthreads = s.r.cfg.outbound_connections ?
	    s.r.cfg.outbound_connections : 1;
	if ((s.threads = calloc(s.nthreads, sizeof(*s.threads))) == NULL)
		log_fatal("queue: out of memory");
	for (i = 0; i < s.nthreads; i++)
		if (pthread_create(&s.threads[i], NULL, worker_main, &s) != 0) {
			log_error("queue: cannot start delivery threads");
			_exit(1);
		}
	log_info("queue: runner started (%u delivery threads, %s)",
	    s.nthreads, s.r.relay_host[0] ? s.r.cfg.relayhost : "MX routing");
	run(&s);
	queue_dmarc_stop();
	stop_threads(&s);
	log_info("queue: runner stopped");
	_exit(0);
}

pid_t
queue_runner_spawn(const struct config *cfg, struct server *srv)
{
	pid_t parent = getpid(), pid;
	int fd;

	(void)srv;
	fd = memfd_create("buzon-config", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, cfg, sizeof(*cfg)) != (ssize_t)sizeof(*cfg) ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	pid = fork();
	if (pid != 0) {
		close(fd);
		return pid;	/* parent, or -1 */
	}
	/*
	 * A new image, not a copy of smtpd: SQLite's per-file lock state in
	 * smtpd's memory names smtpd's descriptors (a new connection's
	 * WAL-index locks would go to whatever file reuses the number), and
	 * after a restart another thread may have held a lock of malloc,
	 * OpenSSL or SQLite at the fork.  Only stdio and the configuration
	 * survive; a killed smtpd takes the runner along (PDEATHSIG
	 * survives exec).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
		_exit(0);
	if (dup2(fd, CONFIG_FD) != CONFIG_FD ||
	    close_range(CONFIG_FD + 1, ~0U, 0) < 0)
		_exit(1);
	execl("/proc/self/exe", "smtpd", QUEUE_RUNNER_ARG,
	    log_debug_enabled() ? "-d" : (char *)NULL, (char *)NULL);
	_exit(127);
}
