from model.text import mask_as_written, mask_personal_data, mask_petitioner, normalize_text, prepare_text


def test_masks_phone_id_bank_card_and_email() -> None:
    text = "张某电话13912345678，身份证110101199003071234，卡号6222020200001234567，邮箱zhang.san@qq.com"
    masked = prepare_text(text)
    for secret in ("13912345678", "110101199003071234", "6222020200001234567", "zhang.san@qq.com"):
        assert secret not in masked
    for placeholder in ("【电话】", "【身份证号】", "【银行卡号】", "【邮箱】"):
        assert placeholder in masked


def test_masks_spaced_and_full_width_numbers_and_landlines() -> None:
    masked = prepare_text(
        "手机１３９ １２３４ ５６７８，座机0731-88886666，卡号6222 0202 0000 1234 567，身份证号11010119900307123X"
    )
    assert "【电话】" in masked and "8888" not in masked
    assert "【银行卡号】" in masked and "【身份证号】" in masked
    assert not any(ch.isdigit() for ch in masked)


def test_keeps_amounts_dates_and_already_masked_numbers() -> None:
    text = "2023年5月12日交了12000元，电话138xxxx5678"
    assert mask_personal_data(text) == text


def test_normalises_full_width_whitespace_export_debris_and_traditional() -> None:
    raw = "這個樓盤_x000D_\n\n\t爛尾了　ＡＢＣ１２３"
    assert normalize_text(raw) == "这个楼盘 烂尾了 ABC123"


def test_spreadsheet_cells_drop_control_characters_xlsx_cannot_hold() -> None:
    from openpyxl import Workbook

    from model.text import spreadsheet_safe

    value = spreadsheet_safe("=A1\x00\x07来电\x1f")
    assert value == "'=A1来电"
    Workbook().active.append([value])  # openpyxl raises IllegalCharacterError on control characters


def test_an_invisible_character_outside_the_basic_plane_cannot_hide_a_phone_number() -> None:
    # U+E0001 (a tag character) is invisible and astral; emoji beside it are astral and stay.
    masked = prepare_text("😡电话139\U000e00011234 5678，快来人😡")
    assert "【电话】" in masked and "5678" not in masked
    assert masked.count("😡") == 2


def test_mask_petitioner_replaces_the_given_name_and_address_where_the_text_repeats_them() -> None:
    masked = mask_as_written("我叫王建国，住幸福路8号，电话13812345678，王建国敬上")
    assert mask_petitioner(masked, "王建国", "幸福路8号") == "我叫【姓名】，住【地址】，电话【电话】，【姓名】敬上"
    assert mask_petitioner(masked, "王", None) == masked  # one character would blank every word with it
    assert mask_petitioner(masked, None, None) == masked
    # an address holding a phone number matches the text as masked
    assert mask_petitioner(mask_as_written("寄到13812345678号信箱"), None, "13812345678号信箱") == "寄到【地址】"
