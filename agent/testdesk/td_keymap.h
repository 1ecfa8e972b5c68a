/*
 * td_keymap.h - US keyboard layout: evdev key codes to ASCII.
 */
#ifndef TD_KEYMAP_H
#define TD_KEYMAP_H

/* The character key `code` (linux/input-event-codes.h) types, with or
 * without shift: printable ASCII, '\n' for Enter, '\b' for Backspace, '\t'
 * for Tab; 0 for keys that type nothing (modifiers, function keys...). */
char td_keymap_char(unsigned code, int shift);

#endif
