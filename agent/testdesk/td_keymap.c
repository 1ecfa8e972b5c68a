/*
 * td_keymap.c - US layout for the keys testdesk echoes (see td_keymap.h).
 */
#include "td_keymap.h"

#include <linux/input-event-codes.h>

struct td_key {
    unsigned short code;
    char plain, shifted;
};

static const struct td_key td_keys[] = {
    {KEY_1, '1', '!'},           {KEY_2, '2', '@'},
    {KEY_3, '3', '#'},           {KEY_4, '4', '$'},
    {KEY_5, '5', '%'},           {KEY_6, '6', '^'},
    {KEY_7, '7', '&'},           {KEY_8, '8', '*'},
    {KEY_9, '9', '('},           {KEY_0, '0', ')'},
    {KEY_MINUS, '-', '_'},       {KEY_EQUAL, '=', '+'},
    {KEY_Q, 'q', 'Q'},           {KEY_W, 'w', 'W'},
    {KEY_E, 'e', 'E'},           {KEY_R, 'r', 'R'},
    {KEY_T, 't', 'T'},           {KEY_Y, 'y', 'Y'},
    {KEY_U, 'u', 'U'},           {KEY_I, 'i', 'I'},
    {KEY_O, 'o', 'O'},           {KEY_P, 'p', 'P'},
    {KEY_LEFTBRACE, '[', '{'},   {KEY_RIGHTBRACE, ']', '}'},
    {KEY_A, 'a', 'A'},           {KEY_S, 's', 'S'},
    {KEY_D, 'd', 'D'},           {KEY_F, 'f', 'F'},
    {KEY_G, 'g', 'G'},           {KEY_H, 'h', 'H'},
    {KEY_J, 'j', 'J'},           {KEY_K, 'k', 'K'},
    {KEY_L, 'l', 'L'},           {KEY_SEMICOLON, ';', ':'},
    {KEY_APOSTROPHE, '\'', '"'}, {KEY_GRAVE, '`', '~'},
    {KEY_BACKSLASH, '\\', '|'},  {KEY_Z, 'z', 'Z'},
    {KEY_X, 'x', 'X'},           {KEY_C, 'c', 'C'},
    {KEY_V, 'v', 'V'},           {KEY_B, 'b', 'B'},
    {KEY_N, 'n', 'N'},           {KEY_M, 'm', 'M'},
    {KEY_COMMA, ',', '<'},       {KEY_DOT, '.', '>'},
    {KEY_SLASH, '/', '?'},       {KEY_SPACE, ' ', ' '},
    {KEY_ENTER, '\n', '\n'},     {KEY_KPENTER, '\n', '\n'},
    {KEY_BACKSPACE, '\b', '\b'}, {KEY_TAB, '\t', '\t'},
};

char td_keymap_char(unsigned code, int shift)
{
    for (unsigned i = 0; i < sizeof(td_keys) / sizeof(*td_keys); i++)
        if (td_keys[i].code == code)
            return shift ? td_keys[i].shifted : td_keys[i].plain;
    return 0;
}
