/*
 * dp_time.h - the one clock Deskpool's timeouts and timers use.
 */
#ifndef DP_TIME_H
#define DP_TIME_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: never jumps with the wall clock, so
 * deadlines computed from it survive clock changes (personalise sets the
 * guest's clock; NTP moves the host's). */
uint64_t dp_time_now_ms(void);

/* The same clock in microseconds (for latencies). */
uint64_t dp_time_now_us(void);

#endif
