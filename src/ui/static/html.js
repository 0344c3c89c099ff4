/**
 * `html`: Preact's `h` through htm, so components are written as tagged templates without a build step. Values
 * interpolated as children are text nodes: user data is never parsed as HTML.
 */
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
