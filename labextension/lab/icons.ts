// The commands' icons (SVG, coloured by the theme through jp-icon3), for the cell toolbar.
import { LabIcon } from "@jupyterlab/ui-components";
import askSvg from "../style/icons/ask.svg";
import insertCodeSvg from "../style/icons/insert_code.svg";

export const askIcon = new LabIcon({ name: "agy-jupyter:ask", svgstr: askSvg });
export const insertCodeIcon = new LabIcon({ name: "agy-jupyter:insert-code", svgstr: insertCodeSvg });
