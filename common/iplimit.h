/*
 * iplimit.h - count open connections per client IP (one process).
 */
#ifndef BUZON_IPLIMIT_H
#define BUZON_IPLIMIT_H

struct iplimit;

struct iplimit *iplimit_new(unsigned max_per_ip);
void iplimit_free(struct iplimit **ip);
/* 1: counted and allowed; 0: over the limit (not counted). */
int iplimit_acquire(struct iplimit *l, const char *ip);
void iplimit_release(struct iplimit *l, const char *ip);

#endif
